import DistillJSON

/// `distilld/stop`: stops the whole daemon (every session), unlike `shutdown`, which ends one
/// session's lifecycle. The reply goes out first.
public struct StopRequest: RequestType {
    public static let method = "distilld/stop"
    public static let keys: Set<String> = []
    public static let fallbackOrdering = Ordering.update

    public init(params: Field) throws {}
    public var ordering: Ordering { .update }

    public struct Response: ResponseType {
        public init() {}
        public var json: JSON { ["stopping": true] }
    }
}
