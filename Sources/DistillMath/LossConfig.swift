import DistillTensor

/// Everything that selects and parameterises a loss.
public struct LossConfig: Sendable {
    public var name: LossName
    /// τ_t > 0, finite. p = softmax(log-values / τ_t).
    public var teacherTemperature: Double
    /// τ_s > 0, finite. q = softmax(log-values / τ_s).
    public var studentTemperature: Double
    /// Multiply the soft loss by τ_t·τ_s (= τ² when equal), which keeps the
    /// gradient magnitude independent of τ (Hinton et al.). Default: false,
    /// except for `combined`, where it is part of the definition.
    public var scaleBySquaredTemperature: Bool
    /// Skew weight for skew_kl / skew_reverse_kl (default 0.1), hard-label
    /// weight for combined (default 0.5). In [0, 1].
    public var alpha: Double
    /// JSD weight for generalized_jsd (default 0.5). In [0, 1].
    public var beta: Double
    public var reduction: Reduction
    public var topKTailPolicy: TopKTailPolicy
    /// When false, a probability row (or exp of a log-prob row) must sum to 1
    /// within 1e-3; when true any positive sum is accepted. Either way rows are
    /// divided by their sum before use.
    public var renormalize: Bool
    /// Hard targets [N, T], int32 or int64; negative values (e.g. −100) are
    /// ignored like PyTorch's `ignore_index`. Used by nll and combined.
    public var labels: Tensor?

    /// Tolerance on Σp − 1 for probability rows when `renormalize` is false.
    public static let probabilitySumTolerance = 1e-3
    /// Largest log-probability accepted before it counts as "> 0".
    public static let logProbTolerance: Float = 1e-4

    public init(
        name: LossName,
        temperature: Double = 1,
        teacherTemperature: Double? = nil,
        studentTemperature: Double? = nil,
        scaleBySquaredTemperature: Bool? = nil,
        alpha: Double? = nil,
        beta: Double? = nil,
        reduction: Reduction = .mean,
        topKTailPolicy: TopKTailPolicy = .renormalize,
        renormalize: Bool = false,
        labels: Tensor? = nil
    ) {
        self.name = name
        self.teacherTemperature = teacherTemperature ?? temperature
        self.studentTemperature = studentTemperature ?? temperature
        self.scaleBySquaredTemperature = scaleBySquaredTemperature ?? (name == .combined)
        self.alpha = alpha ?? (name == .combined ? 0.5 : 0.1)
        self.beta = beta ?? 0.5
        self.reduction = reduction
        self.topKTailPolicy = topKTailPolicy
        self.renormalize = renormalize
        self.labels = labels
    }

    /// Parses wire names; unknown names throw with field `loss.name` (or
    /// `loss.reduction`, `loss.tail_policy`).
    public init(
        name: String,
        temperature: Double = 1,
        teacherTemperature: Double? = nil,
        studentTemperature: Double? = nil,
        scaleBySquaredTemperature: Bool? = nil,
        alpha: Double? = nil,
        beta: Double? = nil,
        reduction: String = "mean",
        topKTailPolicy: String = "renormalize",
        renormalize: Bool = false,
        labels: Tensor? = nil
    ) throws {
        guard let n = LossName(parsing: name) else {
            throw LossError.config(
                "loss.name",
                "unknown loss '\(name)'; expected one of \(LossName.allCases.map(\.rawValue).joined(separator: ", ")) or hinton")
        }
        guard let r = Reduction(rawValue: reduction) else {
            throw LossError.config(
                "loss.reduction",
                "unknown reduction '\(reduction)'; expected one of \(Reduction.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let tp = TopKTailPolicy(rawValue: topKTailPolicy) else {
            throw LossError.config("loss.tail_policy", "unknown top-k tail policy '\(topKTailPolicy)'; expected renormalize or tail_bucket")
        }
        self.init(
            name: n, temperature: temperature, teacherTemperature: teacherTemperature,
            studentTemperature: studentTemperature, scaleBySquaredTemperature: scaleBySquaredTemperature,
            alpha: alpha, beta: beta, reduction: r, topKTailPolicy: tp, renormalize: renormalize, labels: labels)
        try validate()
    }

    /// Checks the scalar parameters (shapes are checked by the scorer).
    public func validate() throws {
        func checkTau(_ v: Double, _ field: String) throws {
            guard v.isFinite, v > 0 else {
                throw LossError.config(field, "temperature must be finite and > 0, got \(v)")
            }
        }
        if teacherTemperature == studentTemperature || teacherTemperature.bitPattern == studentTemperature.bitPattern {
            try checkTau(teacherTemperature, "loss.temperature")
        } else {
            try checkTau(teacherTemperature, "loss.teacher_temperature")
            try checkTau(studentTemperature, "loss.student_temperature")
        }
        guard alpha.isFinite, (0...1).contains(alpha) else {
            throw LossError.config("loss.alpha", "alpha must be in [0, 1], got \(alpha)")
        }
        guard beta.isFinite, (0...1).contains(beta) else {
            throw LossError.config("loss.beta", "beta must be in [0, 1], got \(beta)")
        }
    }

    /// The factor applied to the soft (teacher-vs-student) loss.
    var softScale: Double {
        scaleBySquaredTemperature ? teacherTemperature * studentTemperature : 1
    }

    /// Mixture weight on p used by the mixture-based losses.
    var mixtureWeight: Double {
        switch name {
        case .jsd: return 0.5
        case .generalizedJSD: return beta
        case .skewKL: return alpha
        case .skewReverseKL: return 1 - alpha
        default: return 0.5
        }
    }

    /// log2(e)/τ as the fused kernels use it: logits times this are
    /// exponents of 2 (see `KLSums`).
    static func log2Scale(_ tau: Double) -> Float { Float(1.4426950408889634 / tau) }
}
