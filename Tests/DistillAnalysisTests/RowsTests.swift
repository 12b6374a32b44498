import DistillTensor
import DistillTestSupport
import Foundation
import Testing

@testable import DistillAnalysis

/// `Rows`: one position of dense outputs as float32 log-values, from every stored type.
struct RowsTests {
    static func tensor<T>(_ values: [T], _ dtype: ScalarType, shape: [Int]) -> Tensor {
        values.withUnsafeBytes { try! Tensor(storage: TensorStorage(copying: $0), dtype: dtype, shape: shape) }
    }

    static func outputs(_ values: Tensor, kind: OutputKind = .logits, n: Int, t: Int, v: Int, mask: Tensor? = nil) -> ModelOutputs {
        ModelOutputs(kind: kind, layout: .dense(values: values), examples: n, positions: t, vocab: v, mask: mask)
    }

    /// Every binary16 bit pattern converts as the standard library's `Float16` says:
    /// subnormals, signed zeros, infinities and NaNs included.
    @Test func everyHalfConvertsExactly() {
        var wrong: [UInt16] = []
        for bits in 0...UInt16.max {
            let want = Float(Float16(bitPattern: bits))
            let got = Rows.halfToFloat(bits)
            if !(got.bitPattern == want.bitPattern || (got.isNaN && want.isNaN)) { wrong.append(bits) }
        }
        #expect(wrong.isEmpty, "\(wrong.count) patterns differ, first \(wrong.prefix(5).map { String($0, radix: 16) })")
    }

    /// Each row of a [N, T, V] tensor, whatever its type, reads as the values it stores.
    @Test(arguments: [ScalarType.float32, .float64, .float16, .bfloat16])
    func logitsReadAsStored(dtype: ScalarType) throws {
        var rng = Rng(UInt64(dtype.byteWidth) * 13)
        let (n, t, v) = (2, 3, 7)
        let values = (0..<(n * t * v)).map { _ in rng.normal() * 4 }
        // What each stored value denotes, converted by the standard library (bfloat16 is the
        // top half of a float32: truncate the float32's bits).
        let tensor: Tensor
        let denoted: [Float]
        switch dtype {
        case .float64:
            tensor = Self.tensor(values, .float64, shape: [n, t, v])
            denoted = values.map { Float($0) }
        case .float16:
            let half = values.map { Float16($0) }
            tensor = Self.tensor(half.map(\.bitPattern), .float16, shape: [n, t, v])
            denoted = half.map { Float($0) }
        case .bfloat16:
            let bits = values.map { UInt16(Float($0).bitPattern >> 16) }
            tensor = Self.tensor(bits, .bfloat16, shape: [n, t, v])
            denoted = bits.map { Float(bitPattern: UInt32($0) << 16) }
        default:
            tensor = Tensor(float32: values.map { Float($0) }, shape: [n, t, v])
            denoted = values.map { Float($0) }
        }
        let o = Self.outputs(tensor, n: n, t: t, v: v)
        for r in 0..<(n * t) {
            #expect(try Rows.logValues(o, row: r) == Array(denoted[(r * v)..<((r + 1) * v)]), "\(dtype) row \(r)")
        }
    }

    /// Probabilities read as log(p / Σp), a zero as −∞.
    @Test func probabilitiesReadAsNormalisedLogs() throws {
        var rng = Rng(4)
        var worst = WorstError()
        for trial in 0..<50 {
            let v = Int.random(in: 2...40, using: &rng)
            var probs = (0..<v).map { _ in Float(rng.uniform()) }
            probs[Int.random(in: 0..<v, using: &rng)] = 0
            let o = Self.outputs(Tensor(float32: probs, shape: [1, 1, v]), kind: .probs, n: 1, t: 1, v: v)
            let got = try Rows.logValues(o, row: 0)
            let sum = Reference.sum(probs.map(Double.init))
            for i in 0..<v {
                if probs[i] == 0 {
                    #expect(got[i] == -.infinity)
                } else {
                    worst.record(Double(got[i]), log(Double(probs[i]) / sum), at: "trial \(trial) output \(i)")
                }
            }
        }
        report(["log p": worst], "rows of probabilities")
    }

    @Test func topKIsNotDenseAndMasksSayWhichRowsCount() {
        let topK = ModelOutputs(
            kind: .probs,
            layout: .topK(indices: Tensor(int64: [0, 1], shape: [1, 1, 2]), values: Tensor(float32: [0.5, 0.5], shape: [1, 1, 2])),
            examples: 1, positions: 1, vocab: 4)
        #expect(throws: Rows.NotDense.self) { _ = try Rows.logValues(topK, row: 0) }
        let mask: [UInt8] = [1, 0, 0, 1]
        let o = Self.outputs(
            Tensor(float32: [Float](repeating: 0, count: 8), shape: [2, 2, 2]), n: 2, t: 2, v: 2,
            mask: Self.tensor(mask, .uint8, shape: [2, 2]))
        #expect((0..<4).map { Rows.isValid(o, row: $0) } == [true, false, false, true])
        let unmasked = Self.outputs(Tensor(float32: [0, 0], shape: [1, 1, 2]), n: 1, t: 1, v: 2)
        #expect(Rows.isValid(unmasked, row: 0))
    }
}
