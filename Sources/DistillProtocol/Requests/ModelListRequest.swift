import DistillJSON

/// `model/list`: one line per loaded model, sorted by name.
public struct ModelListRequest: RequestType {
    public static let method = "model/list"
    public static let keys: Set<String> = []
    public static let fallbackOrdering = Ordering.read

    public init(params: Field) throws {}
    public var ordering: Ordering { .read }

    public struct Response: ResponseType {
        public struct Line: Sendable {
            public var name: String
            public var kind: String
            public var architecture: String
            public var parameters: Int
            public var residentBytes: Int
            public var mappedBytes: Int
            public var path: String?

            public init(
                name: String, kind: String, architecture: String, parameters: Int, residentBytes: Int, mappedBytes: Int, path: String?
            ) {
                self.name = name
                self.kind = kind
                self.architecture = architecture
                self.parameters = parameters
                self.residentBytes = residentBytes
                self.mappedBytes = mappedBytes
                self.path = path
            }

            var json: JSON {
                JSON.object([
                    ("name", JSON(name)), ("kind", JSON(kind)), ("architecture", JSON(architecture)), ("parameters", JSON(parameters)),
                    ("residentBytes", JSON(residentBytes)), ("mappedBytes", JSON(mappedBytes)), ("path", path.map { JSON($0) } ?? .null),
                ])
            }
        }

        public var models: [Line]

        public init(models: [Line]) { self.models = models }

        public var json: JSON { ["models": JSON.array(models.map(\.json))] }
    }
}
