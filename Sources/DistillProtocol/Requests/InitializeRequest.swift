import DistillJSON

/// `initialize`: opens a session (LSP lifecycle). distilld reads only `initializationOptions`;
/// the other LSP members are accepted and ignored.
public struct InitializeRequest: RequestType {
    public static let method = "initialize"
    public static let keys: Set<String> = [
        "processId", "clientInfo", "capabilities", "rootUri", "initializationOptions", "trace", "workDoneToken",
    ]
    public static let fallbackOrdering = Ordering.update
    /// `logMessages` values: the log levels and "off".
    public static let logLevels = ["error", "warning", "info", "log", "debug", "off"]

    /// `initializationOptions.logMessages`: the `window/logMessage` level this session asks for.
    public let logMessages: String?

    public init(params: Field) throws {
        logMessages = try params.child("initializationOptions").flatMap { options in
            _ = try options.object()
            return try options.child("logMessages")?.oneOf(Self.logLevels)
        }
    }

    public var ordering: Ordering { .update }

    public struct Response: ResponseType {
        public let serverName: String
        public let serverVersion: String
        /// `capabilities`: what this build supports, written by the server from its tables.
        public let capabilities: JSON

        public init(serverName: String, serverVersion: String, capabilities: JSON) {
            self.serverName = serverName
            self.serverVersion = serverVersion
            self.capabilities = capabilities
        }

        public var json: JSON {
            ["serverInfo": ["name": JSON(serverName), "version": JSON(serverVersion)], "capabilities": capabilities]
        }
    }
}
