import DistillJSON

/// How a per-example value is spread over the examples: count, mean, standard deviation and
/// quantiles, as `distill/score` and `distill/diagnose` report it.
public struct SpreadSummary: Sendable {
    public var count: Int
    public var mean: Double
    public var std: Double
    public var min: Double
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var max: Double

    public init(count: Int, mean: Double, std: Double, min: Double, p50: Double, p90: Double, p99: Double, max: Double) {
        self.count = count
        self.mean = mean
        self.std = std
        self.min = min
        self.p50 = p50
        self.p90 = p90
        self.p99 = p99
        self.max = max
    }

    public var json: JSON {
        [
            "count": JSON(count), "mean": JSON(mean), "std": JSON(std), "min": JSON(min), "p50": JSON(p50),
            "p90": JSON(p90), "p99": JSON(p99), "max": JSON(max),
        ]
    }
}
