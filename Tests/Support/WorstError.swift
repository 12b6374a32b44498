import Testing

/// The worst error of a series of results against a float64 reference, as a fraction of
/// a tolerance (`absolute` or `relative` to the reference, whichever is larger): below 1
/// every result was within it. The accuracy tests report it, as swift-numerics reports
/// its worst ulp, so a change that loses accuracy shows before it fails.
///
/// The default tolerance is the one the loss engine documents (1e-6 absolute, 1e-5
/// relative); computations done in Double throughout are held to a tighter one.
public struct WorstError: CustomStringConvertible, Sendable {
    public let absolute: Double
    public let relative: Double
    public private(set) var ratio = 0.0
    public private(set) var got = 0.0, want = 0.0
    public private(set) var at = ""
    public private(set) var count = 0

    public init(absolute: Double = 1e-6, relative: Double = 1e-5) {
        self.absolute = absolute
        self.relative = relative
    }

    /// Records one result; equal infinities are exact, any other non-finite mismatch is
    /// an infinite error.
    public mutating func record(_ got: Double, _ want: Double, at: @autoclosure () -> String) {
        count += 1
        let r: Double
        if got == want {
            r = 0
        } else if got.isNaN || want.isNaN || got.isInfinite || want.isInfinite {
            r = .infinity
        } else {
            r = abs(got - want) / max(absolute, relative * abs(want))
        }
        if r > ratio || (r.isInfinite && ratio.isFinite) {
            ratio = r
            self.got = got
            self.want = want
            self.at = at()
        }
    }

    public var description: String {
        ratio == 0
            ? "exact over \(count) results"
            : "worst error \(ratio) of the tolerance over \(count) results: got \(got), want \(want) (\(at))"
    }
}

/// Prints every worst error and expects each within its tolerance, and each series non-empty.
public func report(
    _ worst: [String: WorstError], _ test: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    for key in worst.keys.sorted() {
        let w = worst[key]!
        print("\(test) \(key): \(w)")
        #expect(w.count > 0 && w.ratio <= 1, "\(key): \(w)", sourceLocation: sourceLocation)
    }
}
