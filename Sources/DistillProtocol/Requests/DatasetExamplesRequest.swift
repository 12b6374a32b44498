import DistillJSON

/// `dataset/examples`: a page of a loaded dataset's examples or inputs.
public struct DatasetExamplesRequest: RequestType {
    public static let method = "dataset/examples"
    public static let keys: Set<String> = ["name", "offset", "limit"]
    public static let fallbackOrdering = Ordering.read
    /// The most a page may hold.
    public static let maxLimit = 10_000

    public let name: String
    /// Where the page starts (default 0); past the end gives an empty page.
    public let offset: Int
    /// How many at most (default 100).
    public let limit: Int

    public init(params: Field) throws {
        try params.rejectUnknownKeys(Self.keys)
        name = try params.required("name").string()
        offset = try params.child("offset")?.int(min: 0) ?? 0
        limit = try params.child("limit")?.int(min: 0, max: Self.maxLimit) ?? 100
    }

    public var ordering: Ordering { .reading([name]) }

    public struct Response: ResponseType {
        /// A paired dataset's examples or an input list's inputs.
        public enum Records: Sendable {
            case examples([DatasetExample])
            case inputs([InputLine])
        }

        public var total: Int
        public var offset: Int
        public var records: Records

        public init(total: Int, offset: Int, records: Records) {
            self.total = total
            self.offset = offset
            self.records = records
        }

        public var json: JSON {
            let result: JSON = ["total": JSON(total), "offset": JSON(offset)]
            switch records {
            case .examples(let examples): result["examples"] = JSON.array(examples.map(\.json))
            case .inputs(let inputs): result["inputs"] = JSON.array(inputs.map(\.json))
            }
            return result
        }
    }
}
