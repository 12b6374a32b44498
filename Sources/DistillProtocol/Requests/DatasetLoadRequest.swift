/// `dataset/load`: reads a dataset under a name, from a file (or a builtin), inline examples or
/// an inline list of inputs.
public struct DatasetLoadRequest: RequestType {
    public static let method = "dataset/load"
    public static let keys: Set<String> = [
        "name", "path", "format", "kind", "options", "replace", "examples", "inputs", "workDoneToken",
    ]
    public static let fallbackOrdering = Ordering.update
    public typealias Response = DatasetInfo

    /// Where the dataset comes from. Inline examples and inputs stay fields, read by the
    /// handler off the reading thread.
    public enum Source: Sendable {
        case file(DatasetFile)
        case examples(Field)
        case inputs(Field)
    }

    public let target: LoadTarget
    public let source: Source

    public init(params: Field) throws {
        try params.rejectUnknownKeys(Self.keys)
        target = try LoadTarget(params)
        if let examples = params.child("examples") {
            if params.child("path") != nil || params.child("inputs") != nil {
                throw examples.fail("give one of path, examples or inputs")
            }
            source = .examples(examples)
        } else if let inputs = params.child("inputs") {
            if params.child("path") != nil { throw inputs.fail("give one of path, examples or inputs") }
            source = .inputs(inputs)
        } else {
            source = .file(try DatasetFile(params))
        }
    }

    public var ordering: Ordering { target.ordering }

    /// Reads inline examples (`params.examples`): an id that is not given becomes the
    /// example's 1-based position.
    public static func examples(_ field: Field) throws -> [InlineExample] {
        try field.array().map(InlineExample.init)
    }

    /// Reads an inline list of inputs (`params.inputs`), each with its 1-based position as its line.
    public static func inputs(_ field: Field) throws -> [InputLine] {
        try field.array().enumerated().map { InputLine(text: try $1.string(), line: $0 + 1) }
    }
}
