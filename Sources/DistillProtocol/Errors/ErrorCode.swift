/// A JSON-RPC error code. The standard and LSP codes keep their reserved values;
/// distilld's own codes live at 1000–1099, outside every reserved range.
/// Protocol/README.md lists each one.
public struct ErrorCode: RawRepresentable, Hashable, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    // JSON-RPC 2.0
    public static let parseError = ErrorCode(rawValue: -32700)
    public static let invalidRequest = ErrorCode(rawValue: -32600)
    public static let methodNotFound = ErrorCode(rawValue: -32601)
    public static let invalidParams = ErrorCode(rawValue: -32602)
    public static let internalError = ErrorCode(rawValue: -32603)
    // LSP
    public static let requestCancelled = ErrorCode(rawValue: -32800)

    // distilld
    public static let unknownTeacher = ErrorCode(rawValue: 1001)
    public static let unknownDataset = ErrorCode(rawValue: 1002)
    public static let shapeMismatch = ErrorCode(rawValue: 1003)
    public static let loadFailed = ErrorCode(rawValue: 1004)
    public static let limitExceeded = ErrorCode(rawValue: 1005)
    public static let nameExists = ErrorCode(rawValue: 1006)
    public static let unknownModel = ErrorCode(rawValue: 1007)

    /// Every code with its name, for `initialize` and the documentation test.
    public static let all: [(name: String, code: ErrorCode)] = [
        ("ParseError", .parseError), ("InvalidRequest", .invalidRequest),
        ("MethodNotFound", .methodNotFound), ("InvalidParams", .invalidParams),
        ("InternalError", .internalError), ("RequestCancelled", .requestCancelled),
        ("UnknownTeacher", .unknownTeacher), ("UnknownDataset", .unknownDataset),
        ("ShapeMismatch", .shapeMismatch), ("LoadFailed", .loadFailed),
        ("LimitExceeded", .limitExceeded), ("NameExists", .nameExists),
        ("UnknownModel", .unknownModel),
    ]
}
