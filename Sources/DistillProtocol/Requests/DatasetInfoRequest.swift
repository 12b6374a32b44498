/// `dataset/info`: what `dataset/load` answered, for the dataset loaded under `name`.
public struct DatasetInfoRequest: NameRequest {
    public static let method = "dataset/info"
    public static let fallbackOrdering = Ordering.read
    public typealias Response = DatasetInfo

    public let name: String

    public init(name: String) { self.name = name }
    public var ordering: Ordering { .reading([name]) }
}
