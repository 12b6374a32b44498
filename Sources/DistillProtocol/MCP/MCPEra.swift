import DistillJSON

/// The revision one MCP request is served under, and what its result must carry for it.
public enum MCPEra: Sendable, Equatable {
    /// Fixed for the connection by `initialize`.
    case handshake(String)
    /// Named by the request itself (`_meta`).
    case stateless(String)

    public var version: String {
        switch self {
        case .handshake(let v), .stateless(let v): return v
        }
    }

    public var isStateless: Bool {
        if case .stateless = self { return true }
        return false
    }

    /// Stamps a result with what a stateless revision requires of every result (`resultType`,
    /// the server's name in `_meta`) and, for the listings and reads clients may cache, a cache
    /// hint: stale at once and private, since what is loaded changes under any client's feet.
    /// Handshake results are left as they are.
    public func finish(_ result: JSON, cacheable: Bool = false) -> JSON {
        guard isStateless else { return result }
        result["resultType"] = "complete"
        if cacheable {
            result["ttlMs"] = 0
            result["cacheScope"] = "private"
        }
        let meta = result["_meta"] ?? JSON.object()
        meta[MCPVersion.serverInfoKey] = MCPResults.serverInfo
        result["_meta"] = meta
        return result
    }
}

/// `notifications/progress` for an MCP request that carried `_meta.progressToken`.
public struct MCPProgressNotification: OutgoingNotification {
    public static let method = "notifications/progress"
    public let token: JSON
    /// Percent done, 0…100; each notification's is larger than the last's, as MCP requires.
    public let percent: Int
    public let message: String?

    public init(token: JSON, percent: Int, message: String?) {
        self.token = token
        self.percent = percent
        self.message = message
    }

    public var params: JSON {
        JSON.object(present: [
            ("progressToken", token), ("progress", JSON(percent)), ("total", JSON(100)), ("message", message.map { JSON($0) }),
        ])
    }
}
