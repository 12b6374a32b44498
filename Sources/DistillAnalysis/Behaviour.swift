import Foundation

/// Which dataset a student learnt from, judged from how it behaves rather than from its training
/// inputs: a student trained on the full contexts D (the mistake) predicts the targets better
/// when it reads the full context x than when it reads the simplified x′, and most so on the
/// examples where the context carries information (a large context gap); one trained on D′ does
/// not gain from x there (it never saw such contexts).
///
/// Per example i the *advantage* is NLL(target | x′) − NLL(target | x), the student's mean
/// negative log-likelihood per target token reading each (positive: better with the full
/// context). The deciding examples are those with a context gap at or above the median when a
/// teacher gave the gaps, else all. Among them the advantages' signs are put to an exact
/// two-sided sign test against "no preference": the verdict is `full` when more are positive,
/// `simplified` when fewer, at p < `alpha`, and `undecided` otherwise; the confidence is 1 − p.
public enum Behaviour {
    public enum Verdict: String, Sendable {
        case full, simplified, undecided
    }

    public struct Judgement: Sendable, Equatable {
        public let verdict: Verdict
        /// 1 − the sign test's two-sided p-value.
        public let confidence: Double
        /// The sign test's p-value.
        public let pValue: Double
        /// Deciding examples with a positive (negative) advantage; ties (0) are left out.
        public let positive: Int
        public let negative: Int
        /// The deciding examples' indices, the largest |advantage| first.
        public let deciding: [Int]
    }

    public static func judge(advantages: [Double], gaps: [Double]?, alpha: Double = 0.05) -> Judgement {
        var candidates = Array(advantages.indices)
        if let gaps, !gaps.isEmpty {
            let sorted = gaps.sorted()
            let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
            candidates = candidates.filter { gaps[$0] >= median }
        }
        let positive = candidates.filter { advantages[$0] > 0 }.count
        let negative = candidates.filter { advantages[$0] < 0 }.count
        let p = signTest(positive, negative)
        let verdict: Verdict = p < alpha && positive != negative ? (positive > negative ? .full : .simplified) : .undecided
        let deciding = candidates.sorted {
            abs(advantages[$0]) > abs(advantages[$1]) || (abs(advantages[$0]) == abs(advantages[$1]) && $0 < $1)
        }
        return Judgement(verdict: verdict, confidence: 1 - p, pValue: p, positive: positive, negative: negative, deciding: deciding)
    }

    /// The exact two-sided sign test: P(a count at least as far from n/2 as the observed one) for
    /// Binomial(n = a + b, 1/2), summed in log space so that large n stays exact enough.
    public static func signTest(_ a: Int, _ b: Int) -> Double {
        let n = a + b
        guard n > 0 else { return 1 }
        let k = min(a, b)
        func logChoose(_ n: Int, _ r: Int) -> Double { lgamma(Double(n + 1)) - lgamma(Double(r + 1)) - lgamma(Double(n - r + 1)) }
        var tail = 0.0
        for i in 0...k { tail += exp(logChoose(n, i) - Double(n) * log(2.0)) }
        return min(1, 2 * tail)
    }
}
