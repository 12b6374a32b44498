/// An example given inline in `dataset/load` (`params.examples[i]`, schema
/// `store.json#/$defs/inlineExample`): its id, if given, may be a string or an integer.
public struct InlineExample: Sendable, Equatable {
    public var id: String?
    public var full: String
    public var simplified: String
    public var target: String?
    public var label: DatasetRecordLabel?

    public static let keys: Set<String> = ["id", "full", "simplified", "target", "label"]

    /// Reads one element of `params.examples`, naming the member at fault.
    public init(_ item: Field) throws {
        _ = try item.object()
        try item.rejectUnknownKeys(Self.keys)
        id = try item.child("id").map { f -> String in
            if let i = f.json.intValue { return String(i) }
            return try f.string()
        }
        label = try item.child("label").map { f in
            if let i = f.json.intValue { return .integer(i) }
            return .string(try f.string())
        }
        full = try item.required("full").string()
        simplified = try item.required("simplified").string()
        target = try item.child("target")?.string()
    }
}
