/// `dataset/unload`: forgets the dataset loaded under `name` (requests already using it keep it).
public struct DatasetUnloadRequest: NameRequest {
    public static let method = "dataset/unload"
    public static let fallbackOrdering = Ordering.update
    public typealias Response = Unloaded

    public let name: String

    public init(name: String) { self.name = name }
    public var ordering: Ordering { .updating([name]) }
}
