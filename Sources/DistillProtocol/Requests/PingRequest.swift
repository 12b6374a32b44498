import DistillJSON

/// `distilld/ping`: the cheapest round trip, for health checks and latency measurements.
public struct PingRequest: RequestType {
    public static let method = "distilld/ping"
    public static let keys: Set<String> = ["payload"]
    public static let fallbackOrdering = Ordering.read

    /// Any JSON value, echoed back.
    public let payload: JSON?

    public init(params: Field) throws { payload = params.child("payload")?.json }
    public var ordering: Ordering { .read }

    public struct Response: ResponseType {
        public let payload: JSON?
        public var json: JSON {
            let result: JSON = ["pong": true]
            if let payload { result["payload"] = payload }
            return result
        }
    }

    public var response: Response { Response(payload: payload) }
}
