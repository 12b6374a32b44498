import DistillJSON

/// A request that lists the loaded entries of one type (`teacher/list`, `dataset/list`): it
/// takes no params and reads everything loaded.
public protocol ListRequest: RequestType where Response == ListedEntries<Self> {
    /// The reply's member holding the list (`teachers`, `datasets`).
    static var member: String { get }
    init()
}

extension ListRequest {
    public static var keys: Set<String> { [] }
    public static var fallbackOrdering: Ordering { .read }

    public init(params: Field) throws { self.init() }
    public var ordering: Ordering { .read }
}

/// What a `ListRequest` answers: one line per entry, under the request's `member`.
public struct ListedEntries<Request: ListRequest>: ResponseType {
    public var entries: [ListedEntry]

    public init(_ entries: [ListedEntry]) { self.entries = entries }

    public var json: JSON { [Request.member: JSON.array(entries.map(\.json))] }
}
