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

    /// The temperatures every loss and explanation accepts, τ ∈ [1e-4, 1e4].
    ///
    /// Inside it the float32 kernels keep their documented accuracy (with the
    /// float64 row fallback of `ScorePlan.process` where a row's exponents
    /// overflow). Outside it nothing new is learnt: as τ → 0 a loss tends to
    /// its label-matching limit and as τ → ∞ τ²·KL tends to logit matching, and
    /// `distill/explain` reports both limits directly. Beyond the range the
    /// float32 arithmetic itself breaks (log2(e)/τ overflows below about 1e-38,
    /// τ² overflows above about 1e154).
    public static let temperatureRange: ClosedRange<Double> = 1e-4...1e4

    /// The largest τ_t·τ_s factor the float32 kernels serve when the soft loss is
    /// scaled by it. KL itself is O(1/τ²) at large τ, and the float32 partial sums
    /// leave an absolute error near 1e-7 whatever τ is, so the relative error of
    /// τ²·KL grows as τ²: measured against the float64 reference it is 0.28 of the
    /// documented tolerance at τ = 16 and 24× over it at τ = 100. Above this
    /// factor dense rows are computed in float64 (`doubleRowLoss`), slower but
    /// within tolerance up to τ = 1e4.
    public static let float32SoftScaleLimit = 256.0

    /// Why `tau` is refused, or nil when it is accepted.
    public static func temperatureProblem(_ tau: Double) -> String? {
        if tau.isNaN { return "must be a number, got NaN" }
        guard tau > 0 else { return "must be greater than 0, got \(tau)" }
        guard temperatureRange.contains(tau) else {
            return "must be in [1e-4, 1e4] (the range distilld computes losses in), got \(tau)"
        }
        return nil
    }

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
        self.scaleBySquaredTemperature = scaleBySquaredTemperature ?? name.descriptor.scalesBySquaredTemperature
        self.alpha = alpha ?? name.descriptor.defaultAlpha
        self.beta = beta ?? 0.5
        self.reduction = reduction
        self.topKTailPolicy = topKTailPolicy
        self.renormalize = renormalize
        self.labels = labels
    }

    /// Checks the scalar parameters (shapes are checked by the scorer).
    public func validate() throws {
        func checkTau(_ v: Double, _ parameter: LossError.Parameter) throws {
            if let problem = LossConfig.temperatureProblem(v) {
                throw LossError.config(parameter, "temperature \(problem)")
            }
        }
        if teacherTemperature == studentTemperature || teacherTemperature.bitPattern == studentTemperature.bitPattern {
            try checkTau(teacherTemperature, .temperature)
        } else {
            try checkTau(teacherTemperature, .teacherTemperature)
            try checkTau(studentTemperature, .studentTemperature)
        }
        guard alpha.isFinite, (0...1).contains(alpha) else {
            throw LossError.config(.alpha, "alpha must be in [0, 1], got \(alpha)")
        }
        guard beta.isFinite, (0...1).contains(beta) else {
            throw LossError.config(.beta, "beta must be in [0, 1], got \(beta)")
        }
    }

    /// The factor applied to the soft (teacher-vs-student) loss.
    var softScale: Double {
        scaleBySquaredTemperature ? teacherTemperature * studentTemperature : 1
    }

    /// Mixture weight on p used by the mixture-based losses (½ for the others,
    /// where `explicitLoss` forms m but does not read it).
    var mixtureWeight: Double {
        name.descriptor.mixture?.weight(alpha: alpha, beta: beta) ?? 0.5
    }

    /// log2(e)/τ as the fused kernels use it: logits times this are
    /// exponents of 2 (see `KLSums`).
    static func log2Scale(_ tau: Double) -> Float { Float(1.4426950408889634 / tau) }
}
