import DistillJSON

/// A JSON-RPC id: a string, a number or (discouraged, but allowed by JSON-RPC 2.0) null,
/// echoed back with its type.
public struct RequestID: Hashable, CustomStringConvertible, Sendable {
    /// The id as the client sent it, echoed verbatim.
    public let json: JSON
    /// A type-tagged key: `n:1` and `s:1` are different ids; `1` and `1.0` are one.
    public let key: String

    public init?(_ json: JSON) {
        switch json.kind {
        case .string: key = "s:" + json.stringValue!
        case .integer: key = "n:\(json.intValue!)"
        case .real:
            // 1 and 1.0 are the same JSON number, so the same id: an integral real takes the integer's key.
            let value = json.doubleValue!
            key = Int64(exactly: value).map { "n:\($0)" } ?? "n:\(value)"
        case .null: key = "null"
        default: return nil
        }
        self.json = json
    }

    public static func == (a: RequestID, b: RequestID) -> Bool { a.key == b.key }
    public func hash(into h: inout Hasher) { h.combine(key) }
    public var description: String { json.serializedString() }
}
