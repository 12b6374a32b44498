/// Other tools' ways of computing "the distillation loss", recomputed on the
/// same data so numbers can be compared across tools. The raw values are the wire names
/// (`distill/score`'s `conventions`); DistillAnalysis computes and explains them.
public enum Convention: String, Sendable, CaseIterable {
    /// `torch.nn.KLDivLoss(reduction="batchmean")(log_softmax(z_s/τ), softmax(z_t/τ))`:
    /// Σ over every position and output of p·(log p − log q), divided by the batch
    /// size N (the first dimension), with no τ² factor.
    case pytorchBatchmean = "pytorch_kldiv_batchmean"
    /// The same with `reduction="mean"`: divided by the number of *elements*
    /// N·T·V, so the value shrinks with the vocabulary. PyTorch warns about it.
    case pytorchMean = "pytorch_kldiv_mean"
    /// Hinton et al.: τ²·KL(p^τ‖q^τ), batch-averaged, so gradients keep their
    /// size as τ changes.
    case hinton = "hinton"
    /// TRL's `generalized_jsd_loss` (GKD): β·KL(p‖m) + (1−β)·KL(q‖m) with
    /// m = βp + (1−β)q, no τ², averaged over positions — except at β = 0, where it
    /// switches to forward KL(p‖q), and at β = 1, to KL(q‖p).
    case trlGeneralizedJSD = "trl_generalized_jsd"

    /// The loss this convention computes, with its reduction and scale.
    public func config(from base: LossConfig) -> (LossConfig, divisor: Divisor) {
        var c = base
        c.labels = nil
        switch self {
        case .pytorchBatchmean:
            c.name = .forwardKL
            c.scaleBySquaredTemperature = false
            c.reduction = .sum
            return (c, .examples)
        case .pytorchMean:
            c.name = .forwardKL
            c.scaleBySquaredTemperature = false
            c.reduction = .sum
            return (c, .elements)
        case .hinton:
            c.name = .forwardKL
            c.scaleBySquaredTemperature = true
            c.reduction = .sum
            return (c, .examples)
        case .trlGeneralizedJSD:
            c.scaleBySquaredTemperature = false
            c.reduction = .sum
            if base.beta == 0 {
                c.name = .forwardKL
            } else if base.beta == 1 {
                c.name = .reverseKL
            } else {
                c.name = .generalizedJSD
            }
            return (c, .positions)
        }
    }

    /// What the summed loss is divided by: the examples N, the elements N·T·V, or the valid positions.
    public enum Divisor: Sendable { case examples, elements, positions }
}
