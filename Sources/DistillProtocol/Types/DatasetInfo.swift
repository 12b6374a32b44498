import DistillJSON
import DistillSourceOptions

/// What `dataset/load` and `dataset/info` answer: a loaded dataset's size and origin
/// (schema `store.json#/$defs/datasetInfo`).
public struct DatasetInfo: ResponseType {
    /// Where a dataset was read from; absent for inline data and builtins.
    public struct Source: Sendable {
        public var path: String
        public var kind: DatasetKind
        /// The format actually read.
        public var format: DatasetFormat?
        public var options: DatasetOptions

        public init(path: String, kind: DatasetKind, format: DatasetFormat?, options: DatasetOptions) {
            self.path = path
            self.kind = kind
            self.format = format
            self.options = options
        }
    }

    public var name: String
    public var kind: DatasetKind
    /// The format read; nil for inline data.
    public var format: DatasetFormat?
    public var count: Int
    /// Whether the ids were made from line numbers (and so are not used for matching).
    public var idsSynthesized: Bool
    /// The memory the parsed dataset is estimated to hold (see Protocol/README.md).
    public var bytes: Int
    public var source: Source?
    public var warnings: [String]
    /// Seconds since 1970.
    public var loadedAt: Double

    public init(
        name: String, kind: DatasetKind, format: DatasetFormat?, count: Int, idsSynthesized: Bool, bytes: Int,
        source: Source?, warnings: [String], loadedAt: Double
    ) {
        self.name = name
        self.kind = kind
        self.format = format
        self.count = count
        self.idsSynthesized = idsSynthesized
        self.bytes = bytes
        self.source = source
        self.warnings = warnings
        self.loadedAt = loadedAt
    }

    public var json: JSON {
        [
            "type": "dataset", "name": JSON(name), "kind": JSON(kind.rawValue), "format": format.map { JSON($0.rawValue) } ?? .null,
            "count": JSON(count), "idsSynthesized": JSON(idsSynthesized), "bytes": JSON(bytes),
            "source": source.map { s in
                [
                    "path": JSON(s.path), "kind": JSON(s.kind.rawValue), "format": s.format.map { JSON($0.rawValue) } ?? .null,
                    "options": s.options.json,
                ] as JSON
            } ?? .null,
            "warnings": JSON.array(warnings), "loadedAt": JSON(loadedAt),
        ]
    }
}
