import DistillJSON

/// A request distilld answers, one type per method, one file each (`Requests/ScoreRequest.swift`).
///
/// The type says everything the wire needs: the method name, the members its params may hold,
/// how they are read (each complaint naming its field, each default in one place), which loaded
/// names it reads or changes, and the type of its result. The server's `MethodTable` lists the
/// types with their handlers; a test compares `keys` with `Protocol/schemas/<method>.params.json`.
public protocol RequestType: Sendable {
    associatedtype Response: ResponseType
    /// The JSON-RPC method name.
    static var method: String { get }
    /// Every member `params` may hold, as documented in the method's params schema.
    static var keys: Set<String> { get }
    /// How the request is ordered when its params cannot be read: the error reply then keeps
    /// the place in the session's order that the method's requests usually take.
    static var fallbackOrdering: Ordering { get }
    /// Reads the params (absent or null params read as `{}`).
    init(params: Field) throws
    /// Which loaded names this request reads or changes.
    var ordering: Ordering { get }
}

/// A request's result, which knows how to write itself as JSON.
public protocol ResponseType: Sendable {
    var json: JSON { get }
}

/// The result of requests that answer `null` (`shutdown`).
public struct NullResponse: ResponseType {
    public init() {}
    public var json: JSON { .null }
}
