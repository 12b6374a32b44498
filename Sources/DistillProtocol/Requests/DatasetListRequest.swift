/// `dataset/list`: every loaded dataset, one line each.
public struct DatasetListRequest: ListRequest {
    public static let method = "dataset/list"
    public static let member = "datasets"
    public typealias Response = ListedEntries<Self>

    public init() {}
}
