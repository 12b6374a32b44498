/// The correctly rounded sum of a sequence of doubles: the double nearest the exact real sum, ties
/// to even, whatever the order of the terms. It keeps the running sum as non-overlapping partial
/// sums (Shewchuk's method, the one behind Python's `math.fsum`), so the aggregates of a run split
/// into shards equal those of one run, bit for bit, when the shards' per-example sums are merged
/// with `math.fsum` (Protocol/README, "Merging shards").
///
/// Non-finite terms are summed in order as plain doubles (+∞ stays +∞, +∞ and -∞ make NaN), and so
/// is a sum whose exact value overflows a double.
public struct ExactSum: Sendable {
    private var partials: [Double] = []
    private var special = 0.0
    private var sawSpecial = false
    private var plain = 0.0

    public init() {}

    public init<S: Sequence>(_ values: S) where S.Element == Double {
        for v in values { add(v) }
    }

    public mutating func add(_ value: Double) {
        plain += value
        guard value.isFinite else {
            special += value
            sawSpecial = true
            return
        }
        var x = value
        var kept = 0
        for j in partials.indices {
            var y = partials[j]
            if abs(x) < abs(y) { swap(&x, &y) }
            let hi = x + y
            let lo = y - (hi - x)
            if lo != 0 {
                partials[kept] = lo
                kept += 1
            }
            x = hi
        }
        partials.removeSubrange(kept...)
        partials.append(x)
    }

    /// The sum, rounded once.
    public var value: Double {
        if sawSpecial { return special }
        guard var n = partials.indices.last else { return 0 }
        var hi = partials[n]
        var lo = 0.0
        guard hi.isFinite else { return plain }
        while n > 0 {
            let x = hi
            n -= 1
            let y = partials[n]
            hi = x + y
            lo = y - (hi - x)
            if lo != 0 { break }
        }
        // Half-way cases: the partials below decide which way the rounding goes.
        if n > 0 && ((lo < 0 && partials[n - 1] < 0) || (lo > 0 && partials[n - 1] > 0)) {
            let y = lo * 2
            let x = hi + y
            if y == x - hi { hi = x }
        }
        return hi.isFinite ? hi : plain
    }
}

extension Sequence where Element == Double {
    /// The correctly rounded sum (`ExactSum`).
    public var exactSum: Double { ExactSum(self).value }
}
