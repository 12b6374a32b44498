import DistillJSON

/// File formats for datasets.
public enum DatasetFormat: String, Sendable, CaseIterable {
    /// JSON Lines, one object per line.
    case jsonl
    /// RFC 4180 CSV with a header row (the `delimiter` option makes it TSV etc.).
    case csv
    /// Plain text, one input per line (input lists only).
    case txt
    /// A JSON list of strings (input lists only).
    case json
}

/// What a dataset file holds.
public enum DatasetKind: String, Sendable, CaseIterable {
    /// Examples with a full context (teacher's) and a simplified context (student's).
    case paired
    /// A plain list of inputs.
    case inputs
}

/// How to read a dataset file (see Protocol/README.md, Files). A request gives them as
/// `options`, the workspace file keeps them; the store reads by them.
///
/// - `fields` ({canonical: name in file}): renames the canonical fields `id`, `full`,
///   `simplified`, `target`, `label` (paired) and `input` (inputs), e.g.
///   {"full": "context", "simplified": "query"}.
/// - `delimiter` (one ASCII byte, CSV only; default ",", "\t" for `.tsv` files).
public struct DatasetOptions: Sendable, Equatable {
    public var fields: [String: String]
    public var delimiter: UInt8?

    public init(fields: [String: String] = [:], delimiter: UInt8? = nil) {
        self.fields = fields
        self.delimiter = delimiter
    }

    /// The names `fields` may rename.
    public static let canonicalFields: Set<String> = ["id", "full", "simplified", "target", "label", "input"]

    /// Whether `byte` can separate CSV fields: not a quote or a line break, which the
    /// format itself uses.
    public static func isDelimiter(_ byte: UInt8) -> Bool { byte < 0x80 && byte != 0x22 && byte != 0x0A && byte != 0x0D }

    /// The options as a reply echoes them (`source.options`) and the workspace writes them:
    /// `fields` (sorted) and `delimiter` when set.
    public var json: JSON {
        JSON.object(present: [
            ("fields", fields.isEmpty ? nil : JSON.object(fields.sorted { $0.key < $1.key }.map { ($0.key, JSON($0.value)) })),
            ("delimiter", delimiter.map { JSON(String(UnicodeScalar($0))) }),
        ])
    }
}
