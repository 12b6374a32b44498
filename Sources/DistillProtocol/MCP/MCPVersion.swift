import DistillJSON

/// The Model Context Protocol revisions distilld speaks, and how one is agreed.
///
/// Two eras: the handshake revisions (an `initialize` request fixes the version for the
/// connection) and the stateless one (every request names its version in `_meta`, and
/// `server/discover` advertises what the server speaks). 2025-06-18 is the oldest handshake
/// revision offered because it is the first with `structuredContent` and `outputSchema`, which
/// the tools are built on.
public enum MCPVersion {
    /// Handshake revisions, oldest first.
    public static let handshake = ["2025-06-18", "2025-11-25"]
    /// Stateless revisions, oldest first.
    public static let stateless = ["2026-07-28"]
    /// Every revision, newest first: what `server/discover` and -32022 errors list.
    public static let supported = (handshake + stateless).reversed().map { $0 }

    /// The `_meta` key where a stateless request names its revision.
    public static let versionKey = "io.modelcontextprotocol/protocolVersion"
    /// The `_meta` key where a stateless result names the server.
    public static let serverInfoKey = "io.modelcontextprotocol/serverInfo"

    /// The handshake's answer to a requested revision: the same one when distilld speaks it,
    /// else the newest handshake revision (the client then decides whether to go on).
    public static func negotiate(_ requested: String) -> String {
        handshake.contains(requested) ? requested : handshake.last!
    }

    /// `-32022`: a stateless request named a revision distilld does not speak.
    public static func unsupported(_ requested: String) -> ResponseError {
        ResponseError(
            code: .unsupportedProtocolVersion, message: "Unsupported protocol version: \(requested)",
            data: ["supported": JSON.array(supported), "requested": JSON(requested)])
    }
}

extension ErrorCode {
    /// MCP's UnsupportedProtocolVersion (2026-07-28). Only MCP sessions see it, so it is not in
    /// `ErrorCode.all`, which `initialize` announces to JSON-RPC clients.
    public static let unsupportedProtocolVersion = ErrorCode(rawValue: -32022)
    /// MCP's resource-not-found code of the handshake revisions (2026-07-28 uses -32602 instead).
    public static let resourceNotFound = ErrorCode(rawValue: -32002)
}
