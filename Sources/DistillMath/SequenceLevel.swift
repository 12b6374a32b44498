/// Sequence-level distillation over an explicit candidate set Y (e.g. beam
/// or sampled sequences), given each candidate's full-sequence probability
/// under the teacher Pr^t(y) and the student Pr^s(y).
public struct SequenceLevelResult: Sendable, Equatable {
    /// −Σ_{y∈Y} Pr^t(y)·log Pr^s(y) (after renormalising when requested).
    public let crossEntropy: Double
    /// Σ_{y∈Y} Pr^t(y)·log(Pr^t(y)/Pr^s(y)), the KL restricted to Y.
    public let klOnSet: Double
    /// −Σ_{y∈Y} Pr^t(y)·log Pr^t(y).
    public let teacherEntropyOnSet: Double
    /// Σ_{y∈Y} Pr^t(y) and Σ_{y∈Y} Pr^s(y) of the inputs, before any renormalising.
    public let teacherCoverage: Double
    public let studentCoverage: Double
    public let renormalized: Bool
}

public enum SequenceLevel {
    /// Exact sequence-level cross entropy and KL on a candidate set.
    ///
    /// Coverage < 1 (the set misses some teacher mass): with
    /// `renormalize == false` the sums are taken over Y as given — a partial
    /// sum of the full-space quantity, and `klOnSet` can then be negative,
    /// since the restricted vectors are not distributions; with
    /// `renormalize == true` both sides are divided by their coverage first,
    /// i.e. the losses compare the two distributions conditioned on Y (then
    /// `klOnSet` ≥ 0). Zero student probability where the teacher has mass
    /// gives +∞. Throws for unequal lengths, negative/NaN entries, a
    /// coverage > 1 + 1e-6, or zero coverage with `renormalize`.
    public static func loss(teacher: [Double], student: [Double], renormalize: Bool = false) throws -> SequenceLevelResult {
        guard teacher.count == student.count else {
            throw LossError(
                side: .student, parameter: .sequences,
                message: "teacher has \(teacher.count) candidate probabilities, student \(student.count)")
        }
        for (side, xs) in [(LossError.Side.teacher, teacher), (.student, student)] {
            for (i, x) in xs.enumerated() where !(x >= 0 && x <= 1) {
                throw LossError(side: side, parameter: .sequences, vocabIndex: i, message: "sequence probability \(x) is not in [0, 1]")
            }
        }
        let ct = teacher.reduce(0, +), cs = student.reduce(0, +)
        for (side, c) in [(LossError.Side.teacher, ct), (.student, cs)] {
            if c > 1 + 1e-6 {
                throw LossError(side: side, parameter: .sequences, message: "candidate probabilities sum to \(c) > 1")
            }
            if renormalize && c <= 0 {
                throw LossError(side: side, parameter: .sequences, message: "candidate probabilities sum to 0; cannot renormalize")
            }
        }
        let nt = renormalize ? ct : 1, ns = renormalize ? cs : 1
        var ce = 0.0, h = 0.0, kl = 0.0
        for i in teacher.indices {
            let p = teacher[i] / nt, q = student[i] / ns
            guard p > 0 else { continue }
            ce -= p * dlog(q)
            h -= p * dlog(p)
            kl += p * (dlog(p) - dlog(q))
        }
        return SequenceLevelResult(
            crossEntropy: ce, klOnSet: kl, teacherEntropyOnSet: h,
            teacherCoverage: ct, studentCoverage: cs, renormalized: renormalize)
    }
}
