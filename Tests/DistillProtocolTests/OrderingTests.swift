import DistillProtocol
import DistillTestSupport
import Testing

/// `Ordering.conflicts` against its definition: two requests must run one after the other
/// when they share a name (or one takes every name) and at least one of them changes it.
struct OrderingTests {
    static let universe = ["a", "b", "c", "d"]

    /// A random ordering: a read or an update of a random subset of four names (the empty
    /// set included), or of everything.
    static func random(_ rng: inout Rng) -> Ordering {
        let access: Ordering.Access = rng.uniform() < 0.5 ? .read : .update
        if rng.uniform() < 0.2 { return Ordering(access, names: nil) }
        return Ordering(access, names: Set(universe.filter { _ in rng.uniform() < 0.4 }))
    }

    /// The definition, written out.
    static func mustSerialise(_ a: Ordering, _ b: Ordering) -> Bool {
        let oneChanges = a.access == .update || b.access == .update
        switch (a.names, b.names) {
        case (nil, _), (_, nil): return oneChanges
        case (let x?, let y?): return oneChanges && !x.intersection(y).isEmpty
        }
    }

    @Test func conflictsFollowTheDefinition() {
        var rng = Rng(2024)
        for _ in 0..<20_000 {
            let a = Self.random(&rng), b = Self.random(&rng)
            #expect(a.conflicts(with: b) == Self.mustSerialise(a, b), "\(a) against \(b)")
            #expect(a.conflicts(with: b) == b.conflicts(with: a), "symmetric: \(a), \(b)")
            if a.access == .read && b.access == .read { #expect(!a.conflicts(with: b), "reads never wait for reads") }
            if let x = a.names, let y = b.names, x.isDisjoint(with: y) {
                #expect(!a.conflicts(with: b), "disjoint names never conflict: \(a), \(b)")
            }
            #expect(Ordering.update.conflicts(with: a), "update of everything conflicts with \(a)")
            #expect(a.conflicts(with: .update))
        }
    }

    @Test func namedOrderingsAreSets() {
        #expect(Ordering.reading(["b", "a", "b"]) == Ordering.reading(["a", "b"]))
        #expect(Ordering.updating(["t"]) != Ordering.reading(["t"]))
        #expect(Ordering.reading([String]()) != Ordering.read)
        #expect(Ordering.updating(["t", "d"]).description == "update of d, t")
        #expect(Ordering.read.description == "read of everything")
        #expect(Ordering.update.description == "update of everything")
    }

    /// The lifecycle requests order as their documentation says: reads of everything for
    /// ping and status, barriers for the rest; and an unreadable request keeps that place.
    @Test func lifecycleRequestsOrderAsDocumented() throws {
        let empty = try Field.params(nil)
        #expect(try PingRequest(params: empty).ordering == .read && PingRequest.fallbackOrdering == .read)
        #expect(try StatusRequest(params: empty).ordering == .read && StatusRequest.fallbackOrdering == .read)
        #expect(try InitializeRequest(params: empty).ordering == .update && InitializeRequest.fallbackOrdering == .update)
        #expect(try ShutdownRequest(params: empty).ordering == .update && ShutdownRequest.fallbackOrdering == .update)
        #expect(try StopRequest(params: empty).ordering == .update && StopRequest.fallbackOrdering == .update)
    }
}
