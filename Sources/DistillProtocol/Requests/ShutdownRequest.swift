/// `shutdown`: ends the session's lifecycle (LSP). Read in order: whatever the session sends
/// after it is refused, and it answers only after every earlier request has.
public struct ShutdownRequest: RequestType {
    public static let method = "shutdown"
    public static let keys: Set<String> = []
    public static let fallbackOrdering = Ordering.update
    public typealias Response = NullResponse

    public init(params: Field) throws {}
    public var ordering: Ordering { .update }
}
