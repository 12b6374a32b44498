/// `teacher/load`: reads a teacher under a name, from a file (or a builtin) or from inline outputs.
public struct TeacherLoadRequest: RequestType {
    public static let method = "teacher/load"
    public static let keys: Set<String> = ["name", "path", "format", "options", "replace", "data", "ids", "labels", "workDoneToken"]
    public static let fallbackOrdering = Ordering.update
    public typealias Response = TeacherInfo

    /// Where the outputs come from.
    public enum Source: Sendable {
        case file(TeacherFile)
        /// Inline outputs (`params.data`), with optional `ids` and `labels`: kept as fields, read
        /// by the handler (the arrays may be large, and are read off the reading thread).
        case data(outputs: Field, ids: Field?, labels: Field?)
    }

    public let target: LoadTarget
    public let source: Source

    public init(params: Field) throws {
        try params.rejectUnknownKeys(Self.keys)
        target = try LoadTarget(params)
        if let data = params.child("data") {
            if params.child("path") != nil { throw data.fail("give path or data, not both") }
            source = .data(outputs: data, ids: params.child("ids"), labels: params.child("labels"))
        } else {
            source = .file(try TeacherFile(params))
        }
    }

    public var ordering: Ordering { target.ordering }
}
