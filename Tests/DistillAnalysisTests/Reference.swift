import DistillTensor
import DistillTestSupport
import Foundation

/// The float64 reference the analyses are checked against, written from the definitions
/// (nothing here calls DistillMath or DistillAnalysis).
enum Reference {
    /// log p_i = z_i/τ − log Σ_j exp(z_j/τ), with the largest z/τ taken out of the sum so
    /// that no exponent overflows; a −∞ logit has log-probability −∞.
    static func logSoftmax(_ z: [Double], tau: Double) -> [Double] {
        let scaled = z.map { $0 / tau }
        let top = scaled.max()!
        var sum = 0.0
        for x in scaled where x > -.infinity { sum += exp(x - top) }
        let logSum = top + log(sum)
        return scaled.map { $0 == -.infinity ? -.infinity : $0 - logSum }
    }

    static func logSoftmax(_ z: [Float], tau: Double) -> [Double] { logSoftmax(z.map(Double.init), tau: tau) }

    /// KL(p‖q) = Σ_{p_i > 0} p_i·(log p_i − log q_i): +∞ when q_i = 0 < p_i.
    static func kl(logP: [Double], logQ: [Double]) -> Double {
        var s = 0.0
        for i in logP.indices where logP[i] > -.infinity {
            if logQ[i] == -.infinity { return .infinity }
            s += exp(logP[i]) * (logP[i] - logQ[i])
        }
        return s
    }

    /// H(p) = −Σ p_i log p_i.
    static func entropy(logP: [Double]) -> Double {
        var s = 0.0
        for lp in logP where lp > -.infinity { s -= exp(lp) * lp }
        return s
    }

    /// H(p, q) = −Σ p_i log q_i, summed directly (not as H(p) + KL).
    static func crossEntropy(logP: [Double], logQ: [Double]) -> Double {
        var s = 0.0
        for i in logP.indices where logP[i] > -.infinity {
            if logQ[i] == -.infinity { return .infinity }
            s -= exp(logP[i]) * logQ[i]
        }
        return s
    }

    /// The generalized Jensen–Shannon divergence β·KL(p‖m) + (1−β)·KL(q‖m), m = βp + (1−β)q.
    static func generalizedJSD(logP: [Double], logQ: [Double], beta: Double) -> Double {
        let logM = zip(logP, logQ).map { log(beta * exp($0) + (1 - beta) * exp($1)) }
        return beta * kl(logP: logP, logQ: logM) + (1 - beta) * kl(logP: logQ, logQ: logM)
    }

    /// Percentile `numerator/denominator` of `sorted` by linear interpolation between order
    /// statistics (numpy's default): at virtual index h = (n − 1)·f, x_⌊h⌋ + (h − ⌊h⌋)·(x_⌊h⌋+1 − x_⌊h⌋).
    /// The fraction is given as a ratio of integers so that ⌊h⌋ and h − ⌊h⌋ are exact.
    static func percentile(_ sorted: [Double], _ numerator: Int, over denominator: Int) -> Double {
        let scaled = (sorted.count - 1) * numerator
        let j = scaled / denominator
        let g = Double(scaled % denominator) / Double(denominator)
        if g == 0 { return sorted[j] }
        let (a, b) = (sorted[j], sorted[j + 1])
        if b == .infinity { return .infinity }
        return (1 - g) * a + g * b
    }

    /// Σ x with Neumaier's compensation: a more accurate sum than the one under test.
    /// (An infinite term makes the sum infinite; the compensation would make it NaN.)
    static func sum(_ values: [Double]) -> Double {
        guard values.allSatisfy(\.isFinite) else { return values.reduce(0, +) }
        var s = 0.0, c = 0.0
        for x in values {
            let t = s + x
            c += abs(s) >= abs(x) ? (s - t) + x : (x - t) + s
            s = t
        }
        return s + c
    }

    /// Summary statistics as `Spread` documents them: population standard deviation,
    /// numpy-linear percentiles, +∞ making the mean and std +∞.
    struct Summary {
        let count: Int, mean: Double, std: Double, min: Double, p50: Double, p90: Double, p99: Double, max: Double

        init(_ values: [Double]) {
            count = values.count
            guard !values.isEmpty else {
                (mean, std, min, p50, p90, p99, max) = (0, 0, 0, 0, 0, 0, 0)
                return
            }
            let sorted = values.sorted()
            let n = Double(values.count)
            let m = Reference.sum(values) / n
            mean = m
            std = m.isFinite ? (Reference.sum(values.map { ($0 - m) * ($0 - m) }) / n).squareRoot() : .infinity
            min = sorted[0]
            max = sorted[sorted.count - 1]
            p50 = percentile(sorted, 1, over: 2)
            p90 = percentile(sorted, 9, over: 10)
            p99 = percentile(sorted, 99, over: 100)
        }

        /// Each statistic, by name, for recording against the one under test.
        var fields: [(String, Double)] {
            [("mean", mean), ("std", std), ("min", min), ("p50", p50), ("p90", p90), ("p99", p99), ("max", max)]
        }
    }
}

/// Random model outputs for the analyses: dense float32 logits [N, T, V].
struct Logits {
    let n: Int, t: Int, v: Int
    var values: [Float]
    /// [N, T], 1 where the position takes part; nil for no mask.
    var mask: [UInt8]?

    init(n: Int, t: Int, v: Int, scale: Double, rng: inout Rng) {
        self.n = n
        self.t = t
        self.v = v
        values = (0..<(n * t * v)).map { _ in Float(rng.normal() * scale) }
    }

    init(n: Int, t: Int, v: Int, values: [Float], mask: [UInt8]?) {
        (self.n, self.t, self.v, self.values, self.mask) = (n, t, v, values, mask)
    }

    /// This model's logits plus Gaussian noise of standard deviation `noise`: a student
    /// close to its teacher, but not identical.
    func perturbed(by noise: Double, rng: inout Rng) -> Logits {
        var copy = self
        copy.values = values.map { $0 == -.infinity ? $0 : $0 + Float(rng.normal() * noise) }
        copy.mask = nil
        return copy
    }

    func row(_ r: Int) -> [Float] { Array(values[(r * v)..<((r + 1) * v)]) }

    func isValid(_ r: Int) -> Bool { mask.map { $0[r] != 0 } ?? true }

    var outputs: ModelOutputs {
        let m = mask.map { bytes in
            bytes.withUnsafeBytes { try! Tensor(storage: TensorStorage(copying: $0), dtype: .uint8, shape: [n, t]) }
        }
        return ModelOutputs(
            kind: .logits, layout: .dense(values: Tensor(float32: values, shape: [n, t, v])), examples: n, positions: t,
            vocab: v, mask: m)
    }
}
