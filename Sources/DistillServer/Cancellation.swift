import Synchronization

/// Set by `$/cancelRequest`; long work polls it between chunks.
public final class CancellationToken: Sendable {
    private let flag = Atomic<Bool>(false)
    public init() {}
    public var isCancelled: Bool { flag.load(ordering: .relaxed) }
    public func cancel() { flag.store(true, ordering: .relaxed) }

    /// Throws Swift's `CancellationError` once cancelled.
    public func check() throws {
        if isCancelled { throw CancellationError() }
    }
}
