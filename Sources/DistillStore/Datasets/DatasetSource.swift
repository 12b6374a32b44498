extension DatasetOptions {
    /// The name the file uses for a canonical field.
    func field(_ canonical: String) -> String { fields[canonical] ?? canonical }
}

public struct DatasetSource: Sendable, Equatable {
    public var path: String
    public var kind: DatasetKind
    public var format: DatasetFormat?
    public var options: DatasetOptions

    public init(path: String, kind: DatasetKind = .paired, format: DatasetFormat? = nil, options: DatasetOptions = DatasetOptions()) {
        self.path = path
        self.kind = kind
        self.format = format
        self.options = options
    }

    /// Throws `.invalidPath` naming `path` when it holds NUL.
    public func checkPaths() throws { try checkPath(path, field: "path") }
}
