import Foundation
import Testing

@testable import DistillModels

/// The element-wise kernels of the forward pass against float64 formulas, worst case reported.
struct KernelTests {
    /// RoPE with Hugging Face's rotate_half pairing (i with i + d/2), against the rotation written
    /// in Double with θ_i = position · base^(−2i/d). The float32 angle (as transformers forms it)
    /// may be off by a couple of roundings of its size, so the bound grows with the angle.
    @Test(arguments: [nil, RopeScaling.linear(factor: 4)])
    func ropeMatchesFloat64Rotation(scaling: RopeScaling?) {
        let d = 16
        let heads = 3
        let base = 10_000.0
        let positions = [0, 1, 2, 7, 31, 100, 1000]
        let rope = Rope(headDim: d, theta: base, scaling: scaling)
        let (c, s) = rope.tables(positions: positions)
        var rng = Rng(3)
        let input = rng.floats(positions.count * heads * d)
        var x = input
        c.withUnsafeBufferPointer { cb in
            s.withUnsafeBufferPointer { sb in
                x.withUnsafeMutableBufferPointer {
                    Kernels.rope(
                        $0.baseAddress!, rows: positions.count, ld: heads * d, heads: heads, headDim: d, cos: cb.baseAddress!,
                        sin: sb.baseAddress!)
                }
            }
        }
        let factor: Double = if case .linear(let f) = scaling { f } else { 1 }
        var worstExcess = -Double.infinity
        for (r, p) in positions.enumerated() {
            for h in 0..<heads {
                let o = r * heads * d + h * d
                for i in 0..<(d / 2) {
                    let angle = Double(p) / factor * pow(base, -Double(2 * i) / Double(d))
                    let a = Double(input[o + i])
                    let b = Double(input[o + i + d / 2])
                    let wantA = a * cos(angle) - b * sin(angle)
                    let wantB = b * cos(angle) + a * sin(angle)
                    let bound = 4e-7 + 3 * angle * 1.2e-7 * (abs(a) + abs(b))
                    worstExcess = max(worstExcess, abs(Double(x[o + i]) - wantA) - bound, abs(Double(x[o + i + d / 2]) - wantB) - bound)
                }
            }
        }
        #expect(worstExcess <= 0, "worst error exceeds its bound by \(worstExcess)")
    }

    /// Llama 3's band-wise scaling against the three cases written out in Double: wavelengths
    /// below original/high_freq_factor keep their frequency, above original/low_freq_factor are
    /// divided by the factor, and the band between blends the two linearly in original/wavelength.
    @Test func llama3ScalingBands() {
        let d = 16
        let (factor, low, high, original) = (8.0, 1.0, 4.0, 32)
        let rope = Rope(
            headDim: d, theta: 10_000,
            scaling: .llama3(factor: factor, lowFrequencyFactor: low, highFrequencyFactor: high, originalMaxPositions: original))
        var bands = Set<String>()
        for i in 0..<(d / 2) {
            let f = pow(10_000.0, -Double(2 * i) / Double(d))
            let wavelength = 2 * Double.pi / f
            let want: Double
            if wavelength < Double(original) / high {
                want = f
                bands.insert("high")
            } else if wavelength > Double(original) / low {
                want = f / factor
                bands.insert("low")
            } else {
                let t = (Double(original) / wavelength - low) / (high - low)
                want = (1 - t) * f / factor + t * f
                bands.insert("medium")
            }
            #expect(abs(Double(rope.inverseFrequencies[i]) - want) <= 2e-7 * want, "frequency \(i)")
        }
        #expect(bands == ["high", "medium", "low"])
    }

    @Test func rmsNormAndLayerNormMatchFloat64() {
        var rng = Rng(5)
        let n = 37
        let rows = 3
        let x = rng.floats(rows * n, scale: 3).map { $0 + 2 }
        let w = rng.floats(n).map { $0 + 1 }
        let b = rng.floats(n)
        let eps: Float = 1e-5
        var rms = [Float](repeating: 0, count: rows * n)
        var ln = rms
        Kernels.rmsNorm(x, &rms, rows: rows, n: n, weight: w, epsilon: eps)
        Kernels.layerNorm(x, &ln, rows: rows, n: n, weight: w, bias: b, epsilon: eps)
        var wantRMS = [Double]()
        var wantLN = [Double]()
        for r in 0..<rows {
            let row = x[(r * n)..<((r + 1) * n)].map(Double.init)
            let meanSquare = row.map { $0 * $0 }.reduce(0, +) / Double(n)
            wantRMS += row.enumerated().map { Double(w[$0.offset]) * $0.element / (meanSquare + Double(eps)).squareRoot() }
            let mean = row.reduce(0, +) / Double(n)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)
            wantLN += row.enumerated().map {
                ($0.element - mean) / (variance + Double(eps)).squareRoot() * Double(w[$0.offset]) + Double(b[$0.offset])
            }
        }
        #expect(maxAbsDiff(rms, wantRMS) < 2e-6)
        #expect(maxAbsDiff(ln, wantLN) < 2e-6)
    }

    /// gelu_new (the tanh form GPT-2 uses) and SiLU·up against Double, relative to 1 + |y|,
    /// including arguments where e^(−2u) overflows.
    @Test func activationsMatchFloat64() {
        let inputs: [Float] = stride(from: -12.0, through: 12.0, by: 0.0137).map { Float($0) } + [-100, -60, -0, 0, 60, 100]
        let n = inputs.count
        var rng = Rng(9)
        let up = rng.floats(n, scale: 2)
        var gelu = inputs
        var gate = inputs
        var scratch = [Float](repeating: 0, count: Kernels.chunk)
        Kernels.geluNew(&gelu, count: n, scratch: &scratch)
        Kernels.swiGLU(&gate, up, count: n, scratch: &scratch)
        var worstGelu = 0.0
        var worstSwi = 0.0
        for i in 0..<n {
            let v = Double(inputs[i])
            let wantGelu = 0.5 * v * (1 + tanh((2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v)))
            let wantSwi = v / (1 + exp(-v)) * Double(up[i])
            worstGelu = max(worstGelu, abs(Double(gelu[i]) - wantGelu) / (1 + abs(wantGelu)))
            worstSwi = max(worstSwi, abs(Double(gate[i]) - wantSwi) / (1 + abs(wantSwi)))
        }
        #expect(gelu.allSatisfy { $0.isFinite } && gate.allSatisfy { $0.isFinite })
        #expect(worstGelu < 1e-6, "gelu_new worst relative error \(worstGelu)")
        #expect(worstSwi < 1e-6, "SwiGLU worst relative error \(worstSwi)")
    }

    /// log-softmax with logits far from zero (where exp without the max subtracted overflows).
    @Test func logSoftmaxSubtractsTheMaximum() {
        var rng = Rng(11)
        let v = 1001
        for offset in [0.0, 1000.0, -1000.0] {
            let logits = rng.floats(v, scale: 20).map { $0 + Float(offset) }
            var got = logits
            TransformerModel.logSoftmax(&got, vocab: v)
            let m = logits.map(Double.init).max()!
            let lse = m + log(logits.map { exp(Double($0) - m) }.reduce(0, +))
            #expect(maxAbsDiff(got, logits.map { Double($0) - lse }) < 1e-4 * max(1, abs(offset) / 100))
            #expect(got.allSatisfy { $0.isFinite })
        }
        var softmax = rng.floats(77, scale: 30)
        let want = softmax.map(Double.init)
        softmax.withUnsafeMutableBufferPointer { Kernels.softmax($0.baseAddress!, $0.count) }
        let m = want.max()!
        let z = want.map { exp($0 - m) }.reduce(0, +)
        #expect(maxAbsDiff(softmax, want.map { exp($0 - m) / z }) < 1e-6)
    }
}
