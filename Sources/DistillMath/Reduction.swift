/// How per-position losses are combined. Only valid positions (mask non-zero
/// and, for label-based losses, label ≥ 0) take part.
public enum Reduction: String, Sendable, CaseIterable {
    /// One value per position, [N·T]; invalid positions hold 0.
    case none
    /// Σ over valid positions of each example, [N]; 0 for an all-masked example.
    case sequenceSum = "sequence_sum"
    /// Mean over valid positions of each example, [N]. An example with no
    /// valid position gets 0 (not NaN) — its `validPerSequence` entry is 0.
    case sequenceMean = "sequence_mean"
    /// Σ over all valid positions / number of valid positions; 0 when there
    /// are none (check `LossResult.validPositions == 0`).
    case mean
    /// Σ over all valid positions.
    case sum
    /// Σ over all valid positions / N (number of examples, masked or not),
    /// matching PyTorch `kl_div(reduction="batchmean")`.
    case batchmean
}

/// Per-sequence and aggregate reductions of a per-position loss array.
struct ReducedLosses {
    var sequenceSums: [Double]
    var sequenceMeans: [Double]
    var validPerSequence: [Int]
    var totalSum: Double
    var validPositions: Int

    /// Each example's sum runs in position order; the total is the correctly rounded sum of the
    /// examples' sums (`ExactSum`), so it depends neither on how rows were split between threads
    /// nor on how examples were split between parts or shards.
    init(perPosition: [Double], valid: [Bool], examples n: Int, positions t: Int) {
        sequenceSums = [Double](repeating: 0, count: n)
        sequenceMeans = [Double](repeating: 0, count: n)
        validPerSequence = [Int](repeating: 0, count: n)
        var total = ExactSum()
        validPositions = 0
        for e in 0..<n {
            var s = 0.0
            var c = 0
            for p in 0..<t where valid[e * t + p] {
                s += perPosition[e * t + p]
                c += 1
            }
            sequenceSums[e] = s
            sequenceMeans[e] = c > 0 ? s / Double(c) : 0
            validPerSequence[e] = c
            total.add(s)
            validPositions += c
        }
        totalSum = total.value
    }

    func reduced(_ r: Reduction, perPosition: [Double]) -> (values: [Double], aggregate: Double?) {
        switch r {
        case .none: return (perPosition, nil)
        case .sequenceSum: return (sequenceSums, nil)
        case .sequenceMean: return (sequenceMeans, nil)
        case .mean:
            let m = validPositions > 0 ? totalSum / Double(validPositions) : 0
            return ([m], m)
        case .sum: return ([totalSum], totalSum)
        case .batchmean:
            let n = sequenceSums.count
            let m = n > 0 ? totalSum / Double(n) : 0
            return ([m], m)
        }
    }
}
