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
    /// How many positions each mean above is over (the entropies and cross entropy are
    /// computed only where the loss needs them), so that results over parts can be joined.
    public let entropyCounts: (teacher: Int, student: Int, cross: Int)
}

extension LossResult {
    /// The result over the examples of `parts` in order, as one run over all of them would give
    /// it: every example's values are its own, so the per-position and per-example arrays are
    /// concatenated and the reductions recomputed from them in the same order (bit for bit what
    /// a single run gives); the means of the side statistics are combined weighted by their counts
    /// (equal to a single run's up to rounding). For scoring more examples than fit in memory at
    /// once, a part at a time. All parts must share the loss, the reduction and the positions.
    public static func joined(_ parts: [LossResult]) -> LossResult {
        precondition(!parts.isEmpty, "nothing to join")
        let first = parts[0]
        precondition(
            parts.allSatisfy { $0.name == first.name && $0.reduction == first.reduction && $0.positions == first.positions },
            "joined parts differ in loss, reduction or positions")
        if parts.count == 1 { return first }
        let examples = parts.reduce(0) { $0 + $1.examples }
        let perPosition = parts.flatMap(\.perPosition)
        let valid = parts.flatMap(\.valid)
        let red = ReducedLosses(perPosition: perPosition, valid: valid, examples: examples, positions: first.positions)
        let (reduced, aggregate) = red.reduced(first.reduction, perPosition: perPosition)
        func weighted(_ mean: (LossExtras) -> Double?, _ count: (LossExtras) -> Int) -> Double? {
            let n = parts.reduce(0) { $0 + count($1.extras) }
            guard n > 0 else { return nil }
            return parts.reduce(0.0) { $0 + (mean($1.extras) ?? 0) * Double(count($1.extras)) } / Double(n)
        }
        let nv = red.validPositions
        let agree = parts.reduce(0) { $0 + $1.extras.top1Agreement }
        let needsTeacher = first.name.needsTeacher
        let tail: (LossExtras) -> Double = { $0.meanTeacherTailMass }
        let extras = LossExtras(
            meanTeacherEntropy: weighted({ $0.meanTeacherEntropy }, { $0.entropyCounts.teacher }),
            meanStudentEntropy: weighted({ $0.meanStudentEntropy }, { $0.entropyCounts.student }),
            meanCrossEntropy: weighted({ $0.meanCrossEntropy }, { $0.entropyCounts.cross }),
            teacherEntropy: parts.flatMap(\.extras.teacherEntropy), studentEntropy: parts.flatMap(\.extras.studentEntropy),
            top1Agreement: agree, top1AgreementRate: nv > 0 && needsTeacher ? Double(agree) / Double(nv) : 0,
            tailPolicy: parts.lazy.compactMap(\.extras.tailPolicy).first,
            meanTeacherTailMass: nv > 0 ? parts.reduce(0.0) { $0 + tail($1.extras) * Double($1.validPositions) } / Double(nv) : 0,
            maxTeacherTailMass: parts.map(\.extras.maxTeacherTailMass).max() ?? 0,
            meanStudentTailMass: nv > 0
                ? parts.reduce(0.0) { $0 + $1.extras.meanStudentTailMass * Double($1.validPositions) } / Double(nv) : 0,
            maxStudentTailMass: parts.map(\.extras.maxStudentTailMass).max() ?? 0,
            entropyCounts: (
                parts.reduce(0) { $0 + $1.extras.entropyCounts.teacher }, parts.reduce(0) { $0 + $1.extras.entropyCounts.student },
                parts.reduce(0) { $0 + $1.extras.entropyCounts.cross }
            ))
        return LossResult(
            name: first.name, reduction: first.reduction, examples: examples, positions: first.positions, perPosition: perPosition,
            valid: valid, perSequenceSum: red.sequenceSums, perSequenceMean: red.sequenceMeans, validPerSequence: red.validPerSequence,
            reduced: reduced, aggregate: aggregate, validPositions: nv, extras: extras)
    }
}
