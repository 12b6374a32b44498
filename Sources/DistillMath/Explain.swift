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

    /// softmax(z/τ) in Double with the max subtracted; −inf logits give 0.
    public static func softmax(_ logits: [Float], temperature tau: Double = 1) -> [Double] {
        let m = Double(logits.max() ?? 0)
        let e = logits.map { dexp((Double($0) - m) / tau) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    /// Per-output contributions p_i·log(p_i/q_i) of two distributions.
    public static func breakdown(p: [Double], q: [Double]) -> RowBreakdown {
        precondition(p.count == q.count, "p and q must have the same length")
        var cs: [Contribution] = []
        cs.reserveCapacity(p.count)
        var hp = 0.0, hq = 0.0, kl = 0.0
        for i in p.indices {
            let c: Double = p[i] == 0 ? 0 : (q[i] == 0 ? .infinity : p[i] * (dlog(p[i]) - dlog(q[i])))
            if p[i] > 0 { hp -= p[i] * dlog(p[i]) }
            if q[i] > 0 { hq -= q[i] * dlog(q[i]) }
            kl += c
            cs.append(Contribution(index: i, p: p[i], q: q[i], contribution: c))
        }
        cs.sort { abs($0.contribution) != abs($1.contribution) ? abs($0.contribution) > abs($1.contribution) : $0.index < $1.index }
        return RowBreakdown(contributions: cs, teacherEntropy: hp, studentEntropy: hq, crossEntropy: hp + kl, kl: kl)
    }

    /// Breakdown of logits at temperatures τ_t, τ_s.
    public static func breakdown(
        teacherLogits: [Float], studentLogits: [Float], teacherTemperature: Double = 1,
        studentTemperature: Double = 1
    ) -> RowBreakdown {
        breakdown(p: softmax(teacherLogits, temperature: teacherTemperature), q: softmax(studentLogits, temperature: studentTemperature))
    }

    /// KL(p^τ‖q^τ) in Double.
    public static func kl(teacherLogits zt: [Float], studentLogits zs: [Float], temperature tau: Double) -> Double {
        let p = softmax(zt, temperature: tau), q = softmax(zs, temperature: tau)
        var s = 0.0
        for i in p.indices where p[i] > 0 { s += p[i] * (dlog(p[i]) - dlog(q[i])) }
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
