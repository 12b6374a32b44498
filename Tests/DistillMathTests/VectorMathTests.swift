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
        let xs = (0..<count).map { k in lo + (hi - lo) * Float(k) / Float(count - 1) }
        let ys = VectorMath.exp(xs)
        for (x, y) in zip(xs, ys) {
            let want = Foundation.exp(Double(x))
            let rel = abs(Double(y) - want) / want
            let ulp = abs(Double(y) - want) / Double(Float(want).ulp)
            if rel > worst { worst = rel; worstX = x }
            worstUlp = max(worstUlp, ulp)
        }
        print("vexp: worst relative error \(worst) at x=\(worstX), worst \(worstUlp) ulp over [\(lo), \(hi)]")
        #expect(worst < 3e-7)
        #expect(VectorMath.exp(-Float.infinity) == 0)
        #expect(VectorMath.exp(-100) == 0)
        #expect(VectorMath.exp(0) == 1)
        #expect(VectorMath.exp(100) == .infinity)
        #expect(VectorMath.exp(Float.nan).isNaN)
    }

    /// The fused KL pass's 2^y over its whole range [−125, 0], and its cut:
    /// exactly 0 below, including −inf (a masked vocabulary entry).
    @Test func exp2Accuracy() {
        var worst = 0.0, worstY: Float = 0
        let count = 400_000
        for k in 0..<count {
            let y = vexp2LowerLimit * Float(k) / Float(count - 1)
            let got = VectorMath.exp2NonPositive(y)
            let want = Foundation.exp2(Double(y))
            let rel = abs(Double(got) - want) / want
            if rel > worst { worst = rel; worstY = y }
        }
        print("vexp2: worst relative error \(worst) at y=\(worstY) over [\(vexp2LowerLimit), 0]")
        #expect(worst < 3e-7)
        #expect(VectorMath.exp2NonPositive(0) == 1)
        #expect(VectorMath.exp2NonPositive(-1) == 0.5)
        #expect(VectorMath.exp2NonPositive(-125.5) == 0)
        #expect(VectorMath.exp2NonPositive(-Float.infinity) == 0)
        #expect(VectorMath.exp2NonPositive(Float.nan).isNaN)
    }

    /// The mixture pass's log2 over positive normal floats: absolute error
    /// within 2e-7 everywhere (|log2 x| up to 128) and relative error within
    /// 3e-7 near 1; 0 maps to a finite value.
    @Test func log2Accuracy() {
        var worstAbs = 0.0, worstRel = 0.0
        for k in 0..<300_000 {
            let x = Float(pow(2.0, -126.0 + 253.0 * Double(k) / 300_000))
            let err = abs(Double(VectorMath.log2Finite(x)) - Foundation.log2(Double(x)))
            worstAbs = max(worstAbs, err / max(1, abs(Foundation.log2(Double(x)))))
        }
        for k in 1..<100_000 {
            let x = 0.75 + Float(k) / 200_000
            let want = Foundation.log2(Double(x))
            guard want != 0 else { continue }
            worstRel = max(worstRel, abs(Double(VectorMath.log2Finite(x)) - want) / abs(want))
        }
        print("vlog2: worst error \(worstAbs) (relative to max(1, |log2 x|)), \(worstRel) relative near 1")
        #expect(worstAbs < 2e-7)
        #expect(worstRel < 3e-7)
        #expect(VectorMath.log2Finite(1) == 0)
        #expect(VectorMath.log2Finite(0).isFinite)
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
        for (x, y) in zip(xs, VectorMath.log(xs)) {
            let want = Foundation.log(Double(x))
            guard want != 0 else {
                #expect(y == 0)
                continue
            }
            let err = abs(Double(y) - want)
            let rel = err / abs(want)
            if rel > worst { worst = rel; worstX = x }
            worstUlp = max(worstUlp, err / Double(Float(want).ulp))
        }
        print("vlog: worst relative error \(worst) at x=\(worstX), worst \(worstUlp) ulp")
        #expect(worst < 3e-7)
        #expect(VectorMath.log(0) == -.infinity)
        #expect(VectorMath.log(-1).isNaN)
        #expect(VectorMath.log(.infinity) == .infinity)
        #expect(VectorMath.log(1) == 0)
    }
}
