import DistillJSON

/// `options` of a dataset file (see Protocol/README.md, Files): field names and the CSV delimiter.
///
/// A mistake here names `options` itself (`params.options`), with the member in the message.
public struct DatasetFileOptions: Sendable, Equatable {
    /// Canonical field → the name the file uses.
    public var fields: [String: String]
    /// One ASCII character other than a quote or a line break.
    public var delimiter: String?

    /// The names `fields` may rename.
    public static let canonicalFields: Set<String> = ["id", "full", "simplified", "target", "label", "input"]

    public init(fields: [String: String] = [:], delimiter: String? = nil) {
        self.fields = fields
        self.delimiter = delimiter
    }

    public init(_ field: Field) throws {
        self.init()
        guard let members = field.json.members else {
            throw field.fail("dataset options must be an object, got \(field.json.kindDescription)")
        }
        for (key, value) in members {
            switch key {
            case "fields":
                guard let pairs = value.members else { throw field.fail("option fields must be an object {canonical: name}") }
                for (canonical, name) in pairs {
                    guard Self.canonicalFields.contains(canonical) else {
                        let expected = Self.canonicalFields.sorted().joined(separator: ", ")
                        throw field.fail("option fields: unknown field '\(canonical)' (expected one of \(expected))")
                    }
                    guard let name = name.stringValue else { throw field.fail("option fields: '\(canonical)' must map to a string") }
                    fields[canonical] = name
                }
            case "delimiter":
                guard let s = value.stringValue, s.utf8.count == 1, let b = s.utf8.first, b != 0x22, b != 0x0A, b != 0x0D else {
                    throw field.fail("option delimiter must be a single ASCII character other than a quote or newline")
                }
                delimiter = s
            default:
                throw field.fail("unknown dataset option '\(key)'")
            }
        }
    }

    /// The options as the reply echoes them (`source.options`): `fields` (sorted) and
    /// `delimiter` when set.
    public var json: JSON {
        let o = JSON.object()
        if !fields.isEmpty { o["fields"] = JSON.object(fields.sorted { $0.key < $1.key }.map { ($0.key, JSON($0.value)) }) }
        if let delimiter { o["delimiter"] = JSON(delimiter) }
        return o
    }
}
