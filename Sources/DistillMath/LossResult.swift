/// The outcome of scoring one teacher/student pair under one `LossConfig`.
/// All values are NaN-free; +∞ is possible for divergences whose student
/// gives zero probability where the teacher has mass.
public struct LossResult: Sendable {
    public let name: LossName
    public let reduction: Reduction
    public let examples: Int
    public let positions: Int
    /// Loss per position, row-major [N·T]; 0 at invalid positions.
    public let perPosition: [Double]
    /// Which positions took part (mask, and label ≥ 0 for label losses), [N·T].
    public let valid: [Bool]
    /// Σ of valid per-position losses per example, [N] (0 if none valid).
    public let perSequenceSum: [Double]
    /// Mean over valid positions per example, [N] (0 if none valid).
    public let perSequenceMean: [Double]
    /// Valid positions per example, [N].
    public let validPerSequence: [Int]
    /// The loss under `reduction`: [N·T] for none, [N] for the sequence
    /// reductions, a single value otherwise.
    public let reduced: [Double]
    /// The scalar for mean / sum / batchmean; nil for the others.
    public let aggregate: Double?
    /// Number of valid positions; 0 means `mean` was defined as 0.
    public let validPositions: Int
    public let extras: LossExtras
}

/// Side statistics, averaged over valid positions where they were computed.
public struct LossExtras: Sendable {
    /// Mean H(p) of the teacher at τ_t (nil when the loss did not need it).
    public let meanTeacherEntropy: Double?
    /// Mean H(q) of the student at τ_s.
    public let meanStudentEntropy: Double?
    /// Mean cross entropy H(p, q) = H(p) + KL(p‖q) at the temperatures.
    public let meanCrossEntropy: Double?
    /// Per-position H(p), H(q) (0 where invalid or not computed).
    public let teacherEntropy: [Double]
    public let studentEntropy: [Double]
    /// Positions where argmax teacher == argmax student (first index on ties).
    public let top1Agreement: Int
    /// top1Agreement / validPositions (0 when none valid).
    public let top1AgreementRate: Double
    /// Policy applied when a side was top-k, nil for dense/dense.
    public let tailPolicy: TopKTailPolicy?
    public let meanTeacherTailMass: Double
    public let maxTeacherTailMass: Double
    public let meanStudentTailMass: Double
    public let maxStudentTailMass: Double
}
