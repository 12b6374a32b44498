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

    /// What the loss needs from the engine, stated once for every loss.
    public var descriptor: LossDescriptor {
        switch self {
        case .forwardKL: return LossDescriptor(formula: .forwardKL)
        case .reverseKL: return LossDescriptor(formula: .reverseKL, readsReverseKL: true)
        case .jsd: return LossDescriptor(formula: .mixture(.jsd), secondPass: .mixture)
        case .generalizedJSD: return LossDescriptor(formula: .mixture(.generalizedJSD), secondPass: .mixture)
        case .skewKL: return LossDescriptor(formula: .mixture(.skewKL), secondPass: .mixture)
        case .skewReverseKL: return LossDescriptor(formula: .mixture(.skewReverseKL), secondPass: .mixture)
        case .tvd: return LossDescriptor(formula: .totalVariation, secondPass: .differences)
        case .crossEntropy: return LossDescriptor(formula: .crossEntropy)
        case .nll: return LossDescriptor(formula: .hardLabel, needsTeacher: false, usesLabels: true)
        case .logitMSE: return LossDescriptor(formula: .logitMSE, needsDenseLogits: true)
        case .probMSE: return LossDescriptor(formula: .probabilityMSE, secondPass: .differences)
        case .combined:
            return LossDescriptor(formula: .combined, usesLabels: true, scalesBySquaredTemperature: true, defaultAlpha: 0.5)
        }
    }

    /// Whether the loss reads hard labels.
    public var usesLabels: Bool { descriptor.usesLabels }
    /// Whether the loss needs a teacher at all.
    public var needsTeacher: Bool { descriptor.needsTeacher }
}

/// A loss's traits: which inputs it reads, which passes over a row it needs
/// and how its value is formed from their sums. `LossName.descriptor` states
/// them for every loss, so the scorer and the formulas ask here instead of
/// listing loss names.
public struct LossDescriptor: Sendable, Equatable {
    /// How the row's value is formed from the sums the passes collect.
    public enum Formula: Sendable, Equatable {
        /// KL(p‖q).
        case forwardKL
        /// KL(q‖p).
        case reverseKL
        /// H(p) + KL(p‖q).
        case crossEntropy
        /// A combination of KL(p‖m) and KL(q‖m), m = w·p + (1−w)·q.
        case mixture(Mixture)
        /// ½·Σ|p_i − q_i|, at most 1.
        case totalVariation
        /// (1/V)·Σ(p_i − q_i)².
        case probabilityMSE
        /// −log q_s[y] on the student alone.
        case hardLabel
        /// (1/V)·Σ(z_t,i/τ_t − z_s,i/τ_s)² on the raw logits.
        case logitMSE
        /// α·(−log q[y]) + (1−α)·τ²·KL(p‖q).
        case combined
    }

    /// The mixture-based losses: the weight w of m and how KL(p‖m) and
    /// KL(q‖m) are combined.
    public enum Mixture: Sendable, Equatable {
        /// ½·KL(p‖m) + ½·KL(q‖m) with w = ½, at most ln 2.
        case jsd
        /// β·KL(p‖m) + (1−β)·KL(q‖m) with w = β.
        case generalizedJSD
        /// KL(p‖m) with w = α.
        case skewKL
        /// KL(q‖m) with w = 1 − α.
        case skewReverseKL

        /// The weight w on p in m = w·p + (1−w)·q.
        func weight(alpha: Double, beta: Double) -> Double {
            switch self {
            case .jsd: return 0.5
            case .generalizedJSD: return beta
            case .skewKL: return alpha
            case .skewReverseKL: return 1 - alpha
            }
        }

        /// The loss from KL(p‖m) and KL(q‖m).
        @inline(__always)
        func combine(klPM: Double, klQM: Double, beta: Double) -> Double {
            switch self {
            case .jsd: return Swift.min(0.5 * klPM + 0.5 * klQM, 0.6931471805599453)
            case .generalizedJSD: return weighted(beta, klPM) + weighted(1 - beta, klQM)
            case .skewKL: return klPM
            case .skewReverseKL: return klQM
            }
        }
    }

    /// The pass over a dense row after the fused KL pass, reading the
    /// exponentials that pass stored.
    public enum SecondPass: Sendable, Equatable {
        case none
        /// KL(p‖m) and KL(q‖m) (`mixtureSums`).
        case mixture
        /// Σ|p_i − q_i| and Σ(p_i − q_i)² (`differenceSums`).
        case differences
    }

    public var formula: Formula
    public var secondPass: SecondPass = .none
    /// Whether the fused pass must also collect KL(q‖p).
    public var readsReverseKL = false
    /// False only for losses computed on the student alone.
    public var needsTeacher = true
    /// Whether hard labels [N, T] are read.
    public var usesLabels = false
    /// Whether both sides must be dense logits (no softmax is taken).
    public var needsDenseLogits = false
    /// The default of `LossConfig.scaleBySquaredTemperature`.
    public var scalesBySquaredTemperature = false
    /// The default of `LossConfig.alpha`: the skew weight, or the hard-label
    /// weight of `combined`.
    public var defaultAlpha = 0.1

    /// The mixture, for the mixture-based losses.
    public var mixture: Mixture? {
        if case .mixture(let m) = formula { return m }
        return nil
    }
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
