import DistillMath
import DistillText

extension Convention {
    /// How this convention's number relates to distilld's, with the reason.
    func explanation(base: LossConfig, value: Double, ours: Double, examples: Int, positions: Int, vocab: Int) -> String {
        let n = ProseFormat.number
        let same = value == ours || abs(value - ours) <= 1e-9 * max(abs(value), abs(ours))
        let relation =
            same
            ? "equal to distilld's \(base.name.rawValue) (\(base.reduction.rawValue)) here"
            : "against distilld's \(n(ours, 4)) for \(base.name.rawValue) (\(base.reduction.rawValue))"
        let tau2 = base.teacherTemperature * base.studentTemperature
        switch self {
        case .pytorchBatchmean:
            var why =
                "PyTorch KLDivLoss(reduction='batchmean') sums p·log(p/q) over every position and output and divides by the batch size N = \(examples), with no τ² factor: \(n(value, 4)), \(relation)."
            if !same {
                if base.scaleBySquaredTemperature { why += " distilld multiplies by τ² = \(n(tau2, 4))." }
                if base.reduction == .mean && positions > 1 {
                    why += " distilld's mean divides by the \(positions) positions of each example too."
                }
                if base.name != .forwardKL { why += " PyTorch's value is forward KL, not \(base.name.rawValue)." }
            }
            return why
        case .pytorchMean:
            return
                "PyTorch KLDivLoss(reduction='mean') divides the same sum by the element count N·T·V = \(examples * positions * vocab), not by the batch: \(n(value, 4)), \(relation). It is \(vocab)× smaller than the per-position KL and is almost never what a distillation loss should be."
        case .hinton:
            return
                "Hinton et al. multiply KL(p^τ‖q^τ) by τ² = \(n(tau2, 4)) so gradients keep their size as τ changes, then average over the batch: \(n(value, 4)), \(relation)."
        case .trlGeneralizedJSD:
            if base.beta == 0 || base.beta == 1 {
                return
                    "At β = \(n(base.beta, 3)) TRL switches to \(base.beta == 0 ? "forward KL(p‖q)" : "reverse KL(q‖p)"), whereas distilld's generalized_jsd is continuous and equals 0 there: \(n(value, 4)), \(relation)."
            }
            return
                "TRL's generalized JSD uses the same mixture m = βp + (1−β)q as distilld at β = \(n(base.beta, 3)), with no τ² factor and a mean over positions: \(n(value, 4)), \(relation)."
        }
    }
}

/// A convention's number next to distilld's, with the reason they differ.
public struct ConventionResult: Sendable {
    public let convention: Convention
    public let value: Double
    public let distilld: Double
    public let explanation: String
}
