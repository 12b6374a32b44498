/// The losses the engine computes. Raw values are the stable wire names.
///
/// Notation: p = teacher distribution at the teacher temperature τ_t
/// (p^τ = softmax(z_t / τ_t)), q = student distribution at τ_s, all logs
/// natural, 0·log 0 = 0.
public enum LossName: String, Sendable, CaseIterable {
    /// KL(p‖q) = Σ p_i log(p_i / q_i). +∞ when some p_i > 0 has q_i = 0.
    case forwardKL = "forward_kl"
    /// KL(q‖p) = Σ q_i log(q_i / p_i).
    case reverseKL = "reverse_kl"
    /// Jensen–Shannon divergence, the β = 0.5 case of `generalizedJSD`. ≤ ln 2.
    case jsd = "jsd"
    /// JSD_β(p, q) = β·KL(p‖m) + (1−β)·KL(q‖m) with m = β·p + (1−β)·q.
    ///
    /// This is continuous in β: at β = 0, m = q and the value is
    /// 0·KL(p‖q) + KL(q‖q) = 0; at β = 1, m = p and it is again 0. TRL's
    /// `generalized_jsd_loss` instead special-cases β = 0 to forward KL and
    /// β = 1 to reverse KL; we deliberately do NOT copy that jump.
    case generalizedJSD = "generalized_jsd"
    /// Skew KL: KL(p ‖ α·p + (1−α)·q). α = 0 is forward KL, α = 1 gives 0.
    case skewKL = "skew_kl"
    /// Skew reverse KL: KL(q ‖ α·q + (1−α)·p). α = 0 is reverse KL.
    case skewReverseKL = "skew_reverse_kl"
    /// Total variation distance ½·Σ|p_i − q_i|, in [0, 1].
    case tvd = "tvd"
    /// Cross entropy H(p, q) = −Σ p_i log q_i = H(p) + KL(p‖q); H(p) is
    /// reported beside it in the extras.
    case crossEntropy = "cross_entropy"
    /// Hard-label negative log-likelihood −log q_s[y] (student at τ_s), with
    /// labels y < 0 (e.g. −100) ignored like PyTorch's `ignore_index`.
    /// Needs no teacher.
    case nll = "nll"
    /// Logit MSE: (1/V)·Σ_i (z_t,i/τ_t − z_s,i/τ_s)² on the raw logits (no
    /// centring, no softmax). Both sides must be dense logits.
    case logitMSE = "logit_mse"
    /// Probability MSE: (1/V)·Σ_i (p_i − q_i)², i.e. the mean over the
    /// vocabulary (over the compared outcomes for top-k inputs).
    case probMSE = "prob_mse"
    /// Hinton's combined objective:
    /// α·CE(y, softmax(z_s)) + (1−α)·τ²·KL(p^τ‖q^τ), the hard-label term at
    /// τ = 1 and the soft term at the configured temperatures; τ² is
    /// τ_t·τ_s. Positions whose label is ignored (< 0) are excluded entirely.
    case combined = "combined"

    /// Accepts the raw names plus the alias "hinton" for `combined`.
    public init?(parsing name: String) {
        if name == "hinton" { self = .combined; return }
        self.init(rawValue: name)
    }

    /// Whether the loss reads hard labels.
    public var usesLabels: Bool { self == .nll || self == .combined }
    /// Whether the loss needs a teacher at all.
    public var needsTeacher: Bool { self != .nll }
}

/// How a top-k (partial) distribution is completed before comparison.
public enum TopKTailPolicy: String, Sendable, CaseIterable {
    /// Compare on the union U of the known indices of both sides. Each side's
    /// known values are tempered and renormalised to sum to 1 over its own
    /// known entries; indices of U it does not know get probability 0. A dense
    /// side is restricted to U exactly (its full-vocabulary distribution at its
    /// temperature, then renormalised over U).
    case renormalize
    /// Add one extra outcome, the tail bucket, holding the mass outside the
    /// known indices: 1 − Σ known for a top-k side, and for a dense side its
    /// exact mass outside U. Indices of U a top-k side does not know get 0
    /// (their mass stays in that side's bucket).
    case tailBucket = "tail_bucket"
}
