import DistillJSON
import DistillProtocol

/// Everything a handler may use while serving one request.
public struct RequestContext: Sendable {
    public let method: String
    public let id: RequestID?
    public let params: JSON?
    public let server: DistillServer
    public let session: Session
    public let cancellation: CancellationToken
    /// Present when the client sent `params.workDoneToken`.
    public let progress: ProgressReporter?

    /// The params as a `Field` rooted at `params` (absent params read as `{}`).
    public func fields() throws -> Field { try Field.params(params) }

    /// Reports progress if the client asked for it.
    public func report(_ fraction: Double, _ message: String? = nil) {
        progress?.report(fraction, message: message)
    }
}
