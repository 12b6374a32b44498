/// Scalar (Double) helpers that explain a single position; used by
/// `distill explain`. Logits are float32 as stored, maths in Double.
public enum Explain {
    /// One output's share of KL(p‖q).
    public struct Contribution: Sendable, Equatable {
        public let index: Int
        public let p: Double
        public let q: Double
        /// p·log(p/q) (0 when p = 0, +∞ when p > 0 = q). Can be negative;
        /// the contributions sum to KL(p‖q) ≥ 0.
        public let contribution: Double
    }

    public struct RowBreakdown: Sendable {
        /// Sorted by |contribution|, largest first (ties: lower index first).
        public let contributions: [Contribution]
        public let teacherEntropy: Double
        public let studentEntropy: Double
        /// H(p, q) = H(p) + KL(p‖q).
        public let crossEntropy: Double
        public let kl: Double
    }

    /// log softmax(z/τ) in Double with the max subtracted; −inf logits give −inf.
    /// Working with logs keeps a probability that underflows (a small τ) from
    /// turning a finite log-ratio into an infinite one.
    public static func logSoftmax(_ logits: [Float], temperature tau: Double = 1) -> [Double] {
        let m = Double(logits.max() ?? 0)
        let u = logits.map { (Double($0) - m) / tau }
        let lse = dlog(u.reduce(0) { $0 + dexp($1) })
        return u.map { $0 - lse }
    }

    /// softmax(z/τ) in Double with the max subtracted; −inf logits give 0.
    public static func softmax(_ logits: [Float], temperature tau: Double = 1) -> [Double] {
        logSoftmax(logits, temperature: tau).map(dexp)
    }

    /// Per-output contributions p_i·log(p_i/q_i) of two distributions.
    public static func breakdown(p: [Double], q: [Double]) -> RowBreakdown {
        precondition(p.count == q.count, "p and q must have the same length")
        return breakdown(logP: p.map(dlog), logQ: q.map(dlog))
    }

    /// Per-output contributions from natural-log probabilities (−inf for 0).
    public static func breakdown(logP lp: [Double], logQ lq: [Double]) -> RowBreakdown {
        precondition(lp.count == lq.count, "p and q must have the same length")
        var cs: [Contribution] = []
        cs.reserveCapacity(lp.count)
        var hp = 0.0, hq = 0.0, kl = 0.0
        for i in lp.indices {
            let p = dexp(lp[i]), q = dexp(lq[i])
            let c: Double = p == 0 ? 0 : (lq[i] == -.infinity ? .infinity : p * (lp[i] - lq[i]))
            if p > 0 { hp -= p * lp[i] }
            if q > 0 { hq -= q * lq[i] }
            kl += c
            cs.append(Contribution(index: i, p: p, q: q, contribution: c))
        }
        cs.sort { abs($0.contribution) != abs($1.contribution) ? abs($0.contribution) > abs($1.contribution) : $0.index < $1.index }
        return RowBreakdown(contributions: cs, teacherEntropy: hp, studentEntropy: hq, crossEntropy: hp + kl, kl: kl)
    }

    /// Breakdown of logits at temperatures τ_t, τ_s.
    public static func breakdown(
        teacherLogits: [Float], studentLogits: [Float], teacherTemperature: Double = 1,
        studentTemperature: Double = 1
    ) -> RowBreakdown {
        breakdown(
            logP: logSoftmax(teacherLogits, temperature: teacherTemperature),
            logQ: logSoftmax(studentLogits, temperature: studentTemperature))
    }

    /// KL(p^τ‖q^τ) in Double.
    public static func kl(teacherLogits zt: [Float], studentLogits zs: [Float], temperature tau: Double) -> Double {
        let lp = logSoftmax(zt, temperature: tau), lq = logSoftmax(zs, temperature: tau)
        var s = 0.0
        for i in lp.indices where lp[i] > -.infinity { s += dexp(lp[i]) * (lp[i] - lq[i]) }
        return Swift.max(0, s)
    }

    /// ∂[τ²·KL(p^τ‖q^τ)]/∂z_s = τ·(q^τ − p^τ): τ² · (1/τ)·(q − p).
    public static func gradient(teacherLogits zt: [Float], studentLogits zs: [Float], temperature tau: Double) -> [Double] {
        let p = softmax(zt, temperature: tau), q = softmax(zs, temperature: tau)
        return zip(q, p).map { tau * ($0 - $1) }
    }

    /// τ²·KL(p^τ‖q^τ) at each temperature.
    public static func temperatureSweep(
        teacherLogits zt: [Float], studentLogits zs: [Float],
        temperatures: [Double]
    ) -> [(temperature: Double, scaledKL: Double)] {
        temperatures.map { ($0, $0 * $0 * kl(teacherLogits: zt, studentLogits: zs, temperature: $0)) }
    }

    /// lim_{τ→∞} τ²·KL(p^τ‖q^τ) = (1/(2V))·‖(z_t − mean z_t) − (z_s − mean z_s)‖²
    /// (second-order expansion of KL around the uniform distribution: the
    /// logit-matching view of distillation). Needs finite logits.
    public static func largeTemperatureLimit(teacherLogits zt: [Float], studentLogits zs: [Float]) -> Double {
        let v = Double(zt.count)
        let d = zip(zt, zs).map { Double($0) - Double($1) }
        let mean = d.reduce(0, +) / v
        return d.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (2 * v)
    }

    /// Small-τ behaviour. With a_t = argmax z_t, a_s = argmax z_s (unique),
    /// p^τ → one-hot(a_t) and log q^τ[a_t] = (z_s[a_t] − z_s[a_s])/τ + o(1/τ), so
    /// τ·KL(p^τ‖q^τ) → z_s[a_s] − z_s[a_t] ≥ 0, the student's logit margin by
    /// which it prefers its own argmax over the teacher's: the "cost of argmax
    /// disagreement". It is 0 iff the argmaxes agree, and τ²·KL → 0 linearly.
    public static func argmaxDisagreementCost(teacherLogits zt: [Float], studentLogits zs: [Float])
        -> (teacherArgmax: Int, studentArgmax: Int, cost: Double)
    {
        let at = zt.indices.max { zt[$0] < zt[$1] || (zt[$0] == zt[$1] && $0 > $1) } ?? 0
        let ast = zs.indices.max { zs[$0] < zs[$1] || (zs[$0] == zs[$1] && $0 > $1) } ?? 0
        return (at, ast, Double(zs[ast]) - Double(zs[at]))
    }
}
