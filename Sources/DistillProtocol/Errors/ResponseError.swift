import DistillJSON

/// An error reply. `data` carries machine-readable detail; for invalid params it
/// always has `field`, the JSON path of the offending value (`params.loss.temperature`).
public struct ResponseError: Error, CustomStringConvertible, Sendable {
    public let code: ErrorCode
    public let message: String
    public let data: JSON?

    public init(code: ErrorCode, message: String, data: JSON? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public var description: String { "\(code.rawValue): \(message)" }

    public var json: JSON {
        let o: JSON = ["code": JSON(code.rawValue), "message": JSON(message)]
        if let data { o["data"] = data }
        return o
    }

    public static func parseError(_ message: String) -> ResponseError {
        ResponseError(code: .parseError, message: "Parse error: \(message)")
    }

    public static func invalidRequest(_ message: String) -> ResponseError {
        ResponseError(code: .invalidRequest, message: "Invalid request: \(message)")
    }

    public static func methodNotFound(_ method: String) -> ResponseError {
        ResponseError(code: .methodNotFound, message: "Method not found: \(method)", data: ["method": JSON(method)])
    }

    /// `field` is a full path from the message root, starting with `params`.
    public static func invalidParams(field: String, _ message: String, extra: [(String, JSON)] = []) -> ResponseError {
        let data: JSON = ["field": JSON(field)]
        for (k, v) in extra { data[k] = v }
        return ResponseError(code: .invalidParams, message: "\(field): \(message)", data: data)
    }

    public static func internalError(_ message: String) -> ResponseError {
        ResponseError(code: .internalError, message: "Internal error: \(message)")
    }

    public static let cancelled = ResponseError(code: .requestCancelled, message: "Request cancelled")
}
