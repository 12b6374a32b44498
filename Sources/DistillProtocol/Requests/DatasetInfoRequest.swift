/// `dataset/info`: what `dataset/load` answered, for a dataset loaded under `name`.
public struct DatasetInfoRequest: RequestType {
    public static let method = "dataset/info"
    public static let keys: Set<String> = ["name"]
    public static let fallbackOrdering = Ordering.read
    public typealias Response = DatasetInfo

    public let name: String

    public init(params: Field) throws { name = try params.required("name").string() }
    public var ordering: Ordering { .reading([name]) }
}
