/// `model/unload`: forgets the model loaded under `name` (a request already running with it
/// finishes with it).
public struct ModelUnloadRequest: NameRequest {
    public static let method = "model/unload"
    public static let fallbackOrdering = Ordering.update
    public typealias Response = Unloaded

    public let name: String

    public init(name: String) { self.name = name }
    public var ordering: Ordering { .updating([name]) }
}
