import Synchronization

/// Set by `$/cancelRequest`; long work polls it between chunks.
///
/// It also decides, once, how a request is answered when its work may be
/// abandoned (a file read that blocks): either the work claims the answer with
/// its result (`claimResult`), or the cancellation claims it and `-32800` goes
/// out at once (`claimCancellation`). Whichever comes second loses, so a
/// cancelled load that finishes late neither answers nor changes the registry.
public final class CancellationToken: Sendable {
    private let flag = Atomic<Bool>(false)
    /// 0: undecided, 1: answered as cancelled, 2: claimed by the result.
    private let outcome = Atomic<Int>(0)
    public init() {}
    public var isCancelled: Bool { flag.load(ordering: .relaxed) }
    public func cancel() { flag.store(true, ordering: .relaxed) }

    /// Throws Swift's `CancellationError` once cancelled.
    public func check() throws {
        if isCancelled { throw CancellationError() }
    }

    /// True if the result may be sent (and committed): the request was not
    /// answered as cancelled first. Idempotent once it has returned true.
    public func claimResult() -> Bool {
        let (exchanged, original) = outcome.compareExchange(expected: 0, desired: 2, ordering: .acquiringAndReleasing)
        return exchanged || original == 2
    }

    /// True if the request may be answered as cancelled now: its result has not been claimed.
    func claimCancellation() -> Bool {
        outcome.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing).exchanged
    }
}
