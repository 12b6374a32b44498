import DistillAnalysis
import Testing

/// `Behaviour`: the sign test against exact binomial sums in integers, and the verdict on
/// constructed advantages and gaps.
struct BehaviourTests {
    /// C(n, k) exactly, for n ≤ 60.
    static func choose(_ n: Int, _ k: Int) -> UInt64 {
        var r: UInt64 = 1
        for i in 0..<k { r = r * UInt64(n - i) / UInt64(i + 1) }
        return r
    }

    @Test func theSignTestIsTheExactBinomialTail() {
        for n in 1...40 {
            for a in 0...n {
                let k = min(a, n - a)
                var tail: UInt64 = 0
                for i in 0...k { tail += Self.choose(n, i) }
                let want = min(1, 2 * Double(tail) / Double(UInt64(1) << UInt64(n)))
                let got = Behaviour.signTest(a, n - a)
                #expect(abs(got - want) <= 1e-12 * max(want, 1e-300) + 1e-15, "n \(n) a \(a): \(got) vs \(want)")
            }
        }
        #expect(Behaviour.signTest(0, 0) == 1)
    }

    @Test func theVerdictFollowsTheSignsOnTheLargeGapExamples() {
        // Better with the full context on every large-gap example, worse on the small-gap ones.
        let gaps = (0..<20).map { Double($0) }
        let advantages = (0..<20).map { $0 >= 10 ? 0.5 + Double($0) / 100 : -0.3 }
        let j = Behaviour.judge(advantages: advantages, gaps: gaps)
        #expect(j.verdict == .full && j.positive == 10 && j.negative == 0)
        #expect(abs(j.pValue - 2.0 / 1024) < 1e-12 && abs(j.confidence - (1 - 2.0 / 1024)) < 1e-12)
        #expect(j.deciding == Array((10..<20).reversed()))
        // Without gaps every example decides: 10 against 10 is no evidence.
        #expect(Behaviour.judge(advantages: advantages, gaps: nil).verdict == .undecided)
        // A student that gains nothing from the full context where it matters.
        let simplified = Behaviour.judge(advantages: advantages.map { -abs($0) }, gaps: gaps)
        #expect(simplified.verdict == .simplified && simplified.negative == 10)
        // Too few deciding examples to reach p < 0.05.
        #expect(Behaviour.judge(advantages: [1, 1, 1, 1], gaps: nil).verdict == .undecided)
        #expect(Behaviour.judge(advantages: [1, 1, 1, 1, 1, 1], gaps: nil).verdict == .full)
    }
}
