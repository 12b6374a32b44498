/// A dataset file a request names: `{"path", "kind"?, "format"?, "options"?}` in
/// `dataset/load`'s params, or `{"path", "format"?, "options"?}` as training inputs in
/// `distill/diagnose`. The path may also be a builtin (`builtin:demo-inputs`).
public struct DatasetFile: Sendable, Equatable {
    /// What the file holds.
    public enum Kind: String, Sendable, CaseIterable {
        case paired, inputs
    }

    /// The formats a dataset file may be read as.
    public enum Format: String, Sendable, CaseIterable {
        case jsonl, csv, txt, json
    }

    public let path: String
    /// nil when the request gave none (paired for `dataset/load`).
    public let kind: Kind?
    /// nil: told from the extension or the content.
    public let format: Format?
    /// nil when the request gave none.
    public let options: DatasetFileOptions?

    public init(path: String, kind: Kind? = nil, format: Format? = nil, options: DatasetFileOptions? = nil) {
        self.path = path
        self.kind = kind
        self.format = format
        self.options = options
    }

    /// Reads `path`, `kind`, `format` and `options` from `object`, in that order; the caller
    /// refuses the members it does not know.
    public init(_ object: Field) throws {
        path = try object.required("path").nonEmptyString()
        kind = try object.child("kind").map { Kind(rawValue: try $0.oneOf(Kind.allCases.map(\.rawValue)))! }
        format = try object.child("format").map { Format(rawValue: try $0.oneOf(Format.allCases.map(\.rawValue)))! }
        options = try object.child("options").map(DatasetFileOptions.init)
    }
}
