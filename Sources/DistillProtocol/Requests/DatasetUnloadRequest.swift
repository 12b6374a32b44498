/// `dataset/unload`: forgets the dataset loaded under `name`.
public struct DatasetUnloadRequest: RequestType {
    public static let method = "dataset/unload"
    public static let keys: Set<String> = ["name"]
    public static let fallbackOrdering = Ordering.update
    public typealias Response = Unloaded

    public let name: String

    public init(params: Field) throws { name = try params.required("name").string() }
    public var ordering: Ordering { .updating([name]) }
}
