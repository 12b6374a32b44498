import DistillMath
import Foundation
import Testing

/// The pointer entry points the forward pass uses (DistillModels), against Double, on lengths
/// that are not multiples of the vector width so every tail path runs.
@Suite struct BufferMathTests {
    func row(_ n: Int, seed: UInt64, scale: Float) -> [Float] {
        var s = seed
        return (0..<n).map { _ in
            s = s &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return (Float(s >> 40) / Float(1 << 24) - 0.5) * 2 * scale
        }
    }

    @Test(arguments: [1, 7, 16, 33, 1000, 50257])
    func expShiftedAndItsSumMatchDouble(n: Int) {
        let x = row(n, seed: UInt64(n), scale: 30)
        let m = VectorMath.maximum(x, count: n)
        #expect(m == x.max()!)
        var out = [Float](repeating: .nan, count: n)
        let total = VectorMath.expShifted(x, count: n, shift: m, into: &out)
        // The difference is rounded to float first, as the kernels take it.
        let want = x.map { Foundation.exp(Double($0 - m)) }
        let wantTotal = want.reduce(0, +)
        var worst = 0.0
        for i in 0..<n { worst = max(worst, abs(Double(out[i]) - want[i]) / max(want[i], 1e-30)) }
        #expect(worst < 3e-7, "worst relative error \(worst)")
        #expect(abs(total - wantTotal) / wantTotal < 1e-6)
        #expect(abs(VectorMath.sumExpShifted(x, count: n, shift: m) - wantTotal) / wantTotal < 1e-6)
    }

    @Test func expOverTheWholeRangeAndMaximumSkipsNaN() {
        var x = row(99, seed: 5, scale: 95)
        x[3] = .nan
        x[10] = -.infinity
        var out = [Float](repeating: 0, count: x.count)
        VectorMath.exp(x, count: x.count, into: &out)
        for (v, y) in zip(x, out) {
            if v.isNaN {
                #expect(y.isNaN)
            } else if v > vexpUpperLimit {
                #expect(y == .infinity)
            } else if v < vexpLowerLimit {
                #expect(y == 0)
            } else {
                #expect(abs(Double(y) - Foundation.exp(Double(v))) <= 3e-7 * Foundation.exp(Double(v)))
            }
        }
        let finite = x.filter { !$0.isNaN }
        #expect(VectorMath.maximum(x, count: x.count) == finite.max()!)
        #expect(VectorMath.maximum(x, count: 0) == -.infinity)
    }
}
