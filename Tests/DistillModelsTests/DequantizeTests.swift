import Foundation
import Testing

@testable import DistillModels

/// Block decoding against the formulas, computed here in Double from the bytes.
struct DequantizeTests {
    /// IEEE 754 half, decoded from its fields.
    static func halfReference(_ h: UInt16) -> Double {
        let sign: Double = h & 0x8000 != 0 ? -1 : 1
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = Double(h & 0x3FF)
        switch exponent {
        case 0: return sign * mantissa * pow(2, -24)
        case 31: return mantissa == 0 ? sign * .infinity : .nan
        default: return sign * (1 + mantissa / 1024) * pow(2, Double(exponent - 15))
        }
    }

    @Test func everyHalfConvertsExactly() {
        let halves = (0...UInt16.max).map { $0 }
        let count = halves.count
        let converted = [Float](unsafeUninitializedCapacity: count) { out, n in
            halves.withUnsafeBytes { Dequantize.f16($0.baseAddress!, count, out.baseAddress!) }
            n = count
        }
        var wrong = 0
        for h in halves {
            let expected = Self.halfReference(h)
            let got = converted[Int(h)]
            let scalar = Dequantize.half(h)
            if expected.isNaN {
                if !got.isNaN || !scalar.isNaN { wrong += 1 }
            } else if Double(got) != expected || got.sign != (h & 0x8000 != 0 ? .minus : .plus) || scalar.bitPattern != got.bitPattern {
                wrong += 1
            }
        }
        #expect(wrong == 0)
    }

    @Test func bfloat16IsTheHighHalfOfAFloat() {
        let values: [Float] = [1, -2.5, .infinity, 3.140625, 0, -0.0]
        let raw = values.map { UInt16($0.bitPattern >> 16) }
        var out = [Float](repeating: 7, count: values.count)
        raw.withUnsafeBytes { Dequantize.bf16($0.baseAddress!, values.count, &out) }
        #expect(out.map(\.bitPattern) == values.map(\.bitPattern))
    }

    /// One block, its bytes laid out by hand.
    func run(_ type: GGMLType, _ bytes: [UInt8]) -> [Float] {
        let n = type.layout.blockSize
        var out = [Float](repeating: .nan, count: n)
        bytes.withUnsafeBytes { Dequantize.run(type, $0.baseAddress!, count: n, into: &out) }
        return out
    }

    static func half(_ x: Float) -> [UInt8] { GGUFBuilder.le(Float16(x).bitPattern) }

    @Test func q8_0IsScaleTimesSignedBytes() {
        let q = (0..<32).map { Int8($0 * 8 - 128) }
        let out = run(.q8_0, Self.half(0.25) + q.map { UInt8(bitPattern: $0) })
        #expect(out == q.map { Float(Double($0) * 0.25) })
    }

    @Test func q4_0AndQ4_1PutLowNibblesFirst() {
        let nibbles = (0..<32).map { UInt8(($0 * 7) % 16) }
        let packed = (0..<16).map { nibbles[$0] | (nibbles[$0 + 16] << 4) }
        #expect(run(.q4_0, Self.half(0.5) + packed) == nibbles.map { Float((Double($0) - 8) * 0.5) })
        #expect(run(.q4_1, Self.half(0.5) + Self.half(-1) + packed) == nibbles.map { Float(Double($0) * 0.5 - 1) })
    }

    @Test func q5TypesTakeTheFifthBitFromTheWord() {
        let values = (0..<32).map { UInt8(($0 * 11) % 32) }
        let packed = (0..<16).map { (values[$0] & 15) | ((values[$0 + 16] & 15) << 4) }
        var high: UInt32 = 0
        for (i, v) in values.enumerated() where v & 16 != 0 { high |= 1 << UInt32(i) }
        #expect(run(.q5_0, Self.half(2) + GGUFBuilder.le(high) + packed) == values.map { Float((Double($0) - 16) * 2) })
        #expect(run(.q5_1, Self.half(2) + Self.half(0.5) + GGUFBuilder.le(high) + packed) == values.map { Float(Double($0) * 2 + 0.5) })
    }

    @Test func q6_KFollowsItsLayout() {
        // q = 6-bit value per element; scales per 16 elements.
        let q = (0..<256).map { UInt8(($0 * 37 + 5) % 64) }
        var low = [UInt8](repeating: 0, count: 128)
        var high = [UInt8](repeating: 0, count: 64)
        for e in 0..<256 {
            let h = e / 128
            let m = (e % 128) / 32
            let i = e % 32
            low[64 * h + 32 * (m % 2) + i] |= (q[e] & 15) << (4 * UInt8(m / 2))
            high[32 * h + i] |= (q[e] >> 4) << (2 * UInt8(m))
        }
        let scales = (0..<16).map { Int8($0 - 8) }
        let out = run(.q6_K, low + high + scales.map { UInt8(bitPattern: $0) } + Self.half(0.125))
        let expected = (0..<256).map { Float(0.125 * Double(scales[$0 / 16]) * (Double(q[$0]) - 32)) }
        #expect(out == expected)
    }

    @Test func q4_KUnpacksSixBitScalesAndMinimums() {
        let scales: [UInt8] = [1, 63, 5, 17, 40, 2, 33, 60]
        let minimums: [UInt8] = [0, 9, 63, 30, 1, 50, 7, 44]
        var packed = [UInt8](repeating: 0, count: 12)
        for j in 0..<4 {
            packed[j] = scales[j] | ((scales[j + 4] >> 4) << 6)
            packed[j + 4] = minimums[j] | ((minimums[j + 4] >> 4) << 6)
            packed[j + 8] = (scales[j + 4] & 15) | ((minimums[j + 4] & 15) << 4)
        }
        let q = (0..<256).map { UInt8(($0 * 5 + 3) % 16) }
        var qs = [UInt8](repeating: 0, count: 128)
        for e in 0..<256 {
            let sub = e / 32
            qs[32 * (sub / 2) + e % 32] |= q[e] << (4 * UInt8(sub % 2))
        }
        let out = run(.q4_K, Self.half(0.5) + Self.half(0.25) + packed + qs)
        let expected = (0..<256).map { Float(0.5 * Double(scales[$0 / 32]) * Double(q[$0]) - 0.25 * Double(minimums[$0 / 32])) }
        #expect(out == expected)
    }

    @Test func unpermutingUndoesLlamaCppsInterleaving() {
        let rows = 12
        let heads = 3
        let hf = (0..<rows).map(Float.init)
        let stored = TinyLlama.interleave(hf, rows: rows, heads: heads)
        var back = [Float](repeating: -1, count: rows)
        for r in 0..<rows { back[ConversionJob.unpermuted(r, headRows: rows / heads)] = stored[r] }
        #expect(back == hf)
        #expect(stored != hf)
    }
}
