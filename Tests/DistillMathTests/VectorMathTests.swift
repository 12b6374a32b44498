import DistillMath
import Foundation
import Testing

@Suite struct VectorMathTests {
    /// Worst relative error of the SIMD exp against Double exp over the whole
    /// accepted range [vexpLowerLimit, vexpUpperLimit], plus the special cases.
    @Test func expAccuracy() {
        var worst = 0.0, worstX: Float = 0, worstUlp = 0.0
        let lo = vexpLowerLimit, hi = vexpUpperLimit
        let count = 400_000
        var lanes = FloatVector()
        for k in 0..<count {
            let x = lo + (hi - lo) * Float(k) / Float(count - 1)
            lanes[k % 16] = x
            if k % 16 == 15 || k == count - 1 {
                let y = VectorMath.exp(lanes)
                for l in 0..<16 {
                    let want = Foundation.exp(Double(lanes[l]))
                    let rel = abs(Double(y[l]) - want) / want
                    let ulp = abs(Double(y[l]) - want) / Double(Float(want).ulp)
                    if rel > worst { worst = rel; worstX = lanes[l] }
                    worstUlp = max(worstUlp, ulp)
                }
            }
        }
        print("vexp: worst relative error \(worst) at x=\(worstX), worst \(worstUlp) ulp over [\(lo), \(hi)]")
        #expect(worst < 3e-7)
        #expect(VectorMath.exp(-Float.infinity) == 0)
        #expect(VectorMath.exp(-100) == 0)
        #expect(VectorMath.exp(0) == 1)
        #expect(VectorMath.exp(100) == .infinity)
        #expect(VectorMath.exp(Float.nan).isNaN)
    }

    /// Worst relative error of the SIMD log over all positive floats
    /// (log-spaced from the smallest subnormal to the largest finite value,
    /// plus a dense sweep around 1 where log → 0).
    @Test func logAccuracy() {
        var worst = 0.0, worstX: Float = 0, worstUlp = 0.0
        var xs: [Float] = []
        let count = 300_000
        for k in 0..<count {
            let e = -149.0 + (128.0 + 149.0) * Double(k) / Double(count)
            xs.append(Float(pow(2.0, e)))
        }
        for k in 0..<50_000 { xs.append(0.5 + Float(k) / 50_000) }
        xs.append(.greatestFiniteMagnitude)
        var i = 0
        while i < xs.count {
            var v = FloatVector(repeating: 1)
            for l in 0..<16 where i + l < xs.count { v[l] = xs[i + l] }
            let y = VectorMath.log(v)
            for l in 0..<16 where i + l < xs.count {
                let want = Foundation.log(Double(v[l]))
                guard want != 0 else { #expect(y[l] == 0); continue }
                let err = abs(Double(y[l]) - want)
                let rel = err / abs(want)
                if rel > worst { worst = rel; worstX = v[l] }
                worstUlp = max(worstUlp, err / Double(Float(want).ulp))
            }
            i += 16
        }
        print("vlog: worst relative error \(worst) at x=\(worstX), worst \(worstUlp) ulp")
        #expect(worst < 3e-7)
        #expect(VectorMath.log(0) == -.infinity)
        #expect(VectorMath.log(-1).isNaN)
        #expect(VectorMath.log(.infinity) == .infinity)
        #expect(VectorMath.log(1) == 0)
    }
}
