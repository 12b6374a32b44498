import DistillJSON

/// `dataset/list`: every loaded dataset, one line each.
public struct DatasetListRequest: RequestType {
    public static let method = "dataset/list"
    public static let keys: Set<String> = []
    public static let fallbackOrdering = Ordering.read

    public init(params: Field) throws {}
    public var ordering: Ordering { .read }

    public struct Response: ResponseType {
        public var datasets: [ListedEntry]

        public init(datasets: [ListedEntry]) { self.datasets = datasets }

        public var json: JSON { ["datasets": JSON.array(datasets.map(\.json))] }
    }
}
