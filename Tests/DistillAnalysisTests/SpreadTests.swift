import DistillAnalysis
import DistillTestSupport
import Foundation
import Testing

/// `Spread` against a sort-based float64 reference with exact percentile positions.
struct SpreadTests {
    /// Double in, Double out: only the order of additions may differ from the reference.
    static func tolerance() -> WorstError { WorstError(absolute: 1e-12, relative: 1e-12) }

    /// Records each statistic of `spread` against the reference summary of `values`.
    static func record(
        _ spread: Spread, _ values: [Double], into worst: inout [String: WorstError], at: String,
        tolerance: WorstError = tolerance()
    ) {
        let want = Reference.Summary(values)
        #expect(spread.count == values.count, "\(at)")
        let got = [
            ("mean", spread.mean), ("std", spread.std), ("min", spread.min), ("p50", spread.p50), ("p90", spread.p90),
            ("p99", spread.p99), ("max", spread.max),
        ]
        for ((name, g), (_, w)) in zip(got, want.fields) {
            worst[name, default: tolerance].record(g, w, at: "\(at), \(values.count) values")
        }
    }

    /// Random samples of every size up to 300 (so every percentile lands both on and
    /// between order statistics), drawn from distributions with many ties, heavy tails
    /// and losses' usual shape.
    @Test(arguments: 0..<4)
    func randomSamplesMatchTheReference(distribution: Int) {
        var rng = Rng(UInt64(1000 + distribution))
        var worst: [String: WorstError] = [:]
        for size in 1...300 {
            let values: [Double] = (0..<size).map { _ in
                switch distribution {
                case 0: return rng.uniform() * 10
                case 1: return Double(Int.random(in: 0...4, using: &rng))  // ties everywhere
                case 2: return exp(rng.normal() * 3)  // heavy right tail, like per-example KL
                default: return rng.normal()  // signed, like a capacity gap
                }
            }
            Self.record(Spread(values), values, into: &worst, at: "distribution \(distribution)")
        }
        report(worst, "Spread distribution \(distribution)")
    }

    /// Percentiles interpolate linearly between order statistics, whatever order the values come in.
    @Test func percentilesInterpolateBetweenOrderStatistics() {
        // Eleven values 0, 10, ..., 100: every percentile is exactly 100·f.
        var rng = Rng(7)
        let values = (0...10).map { Double($0 * 10) }.shuffled(using: &rng)
        let s = Spread(values)
        #expect(s.p50 == 50)
        #expect(s.p90 == 90)
        #expect(abs(s.p99 - 99) < 1e-12)
        // Two values: p90 lies nine tenths of the way from the smaller to the larger.
        let two = Spread([3, 1])
        #expect(abs(two.p90 - 2.8) < 1e-12 && two.p50 == 2 && two.min == 1 && two.max == 3)
    }

    @Test func emptyAndSingleSamples() {
        let empty = Spread([])
        #expect(empty.count == 0 && empty.mean == 0 && empty.std == 0 && empty.max == 0 && empty.p99 == 0)
        let one = Spread([4.25])
        #expect(one.count == 1 && one.mean == 4.25 && one.std == 0 && one.min == 4.25 && one.p50 == 4.25 && one.p99 == 4.25)
    }

    /// +∞ sorts last and makes the mean and std +∞; percentiles below it stay finite.
    @Test func infiniteLossesSortLast() {
        var rng = Rng(11)
        var worst: [String: WorstError] = [:]
        for size in 2...120 {
            var values = (0..<size).map { _ in rng.uniform() }
            values[Int.random(in: 0..<size, using: &rng)] = .infinity
            let s = Spread(values)
            #expect(s.mean == .infinity && s.std == .infinity && s.max == .infinity)
            Self.record(s, values, into: &worst, at: "one +inf")
        }
        report(worst, "Spread with +inf")
    }
}
