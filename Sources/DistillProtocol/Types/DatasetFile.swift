import DistillSourceOptions

/// A dataset file a request names: `{"path", "kind"?, "format"?, "options"?}` in
/// `dataset/load`'s params, or `{"path", "format"?, "options"?}` as training inputs in
/// `distill/diagnose`. The path may also be a builtin (`builtin:demo-inputs`).
public struct DatasetFile: Sendable, Equatable {
    public let path: String
    /// nil when the request gave none (paired for `dataset/load`).
    public let kind: DatasetKind?
    /// nil: told from the extension or the content.
    public let format: DatasetFormat?
    /// nil when the request gave none.
    public let options: DatasetOptions?

    public init(path: String, kind: DatasetKind? = nil, format: DatasetFormat? = nil, options: DatasetOptions? = nil) {
        self.path = path
        self.kind = kind
        self.format = format
        self.options = options
    }

    /// Reads `path`, `kind`, `format` and `options` from `object`, in that order; the caller
    /// refuses the members it does not know.
    public init(_ object: Field) throws {
        path = try object.required("path").nonEmptyString()
        kind = try object.child("kind").map { DatasetKind(rawValue: try $0.oneOf(DatasetKind.allCases.map(\.rawValue)))! }
        format = try object.child("format").map { DatasetFormat(rawValue: try $0.oneOf(DatasetFormat.allCases.map(\.rawValue)))! }
        options = try object.child("options").map(DatasetOptions.init)
    }
}
