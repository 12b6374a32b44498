import DistillMath

/// Summary statistics of per-example losses, as a practitioner reads them.
public struct Spread: Sendable, Equatable {
    public let count: Int
    public let mean: Double
    /// Population standard deviation (÷ n).
    public let std: Double
    public let min: Double
    public let p50: Double
    public let p90: Double
    public let p99: Double
    public let max: Double

    /// Percentiles use linear interpolation between order statistics (numpy's default).
    /// +∞ values sort last and make the mean and std +∞.
    public init(_ values: [Double]) {
        count = values.count
        guard !values.isEmpty else {
            mean = 0; std = 0; min = 0; p50 = 0; p90 = 0; p99 = 0; max = 0
            return
        }
        let sorted = values.sorted()
        // Correctly rounded sums: the same bits whatever the order of the values, so a spread
        // recomputed from shards' merged values (math.fsum in Python) equals one run's.
        let m = values.exactSum / Double(values.count)
        mean = m
        if m.isFinite {
            std = (values.lazy.map { ($0 - m) * ($0 - m) }.exactSum / Double(values.count)).squareRoot()
        } else {
            std = .infinity
        }
        min = sorted.first!
        max = sorted.last!
        func q(_ f: Double) -> Double {
            let pos = f * Double(sorted.count - 1)
            let lo = Int(pos.rounded(.down))
            let hi = Swift.min(lo + 1, sorted.count - 1)
            let w = pos - Double(lo)
            if w == 0 || sorted[lo] == sorted[hi] { return sorted[lo] }
            return sorted[lo] + (sorted[hi] - sorted[lo]) * w
        }
        p50 = q(0.5)
        p90 = q(0.9)
        p99 = q(0.99)
    }
}
