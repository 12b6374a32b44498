import DistillJSON

/// `$/progress` for a request that carried a `workDoneToken` (LSP work-done progress).
public struct ProgressNotification: OutgoingNotification {
    public static let method = "$/progress"
    public let token: JSON
    /// The LSP `WorkDoneProgressBegin`, `Report` or `End` value.
    public let value: JSON

    public init(token: JSON, value: JSON) {
        self.token = token
        self.value = value
    }

    public var params: JSON { ["token": token, "value": value] }
}

/// `window/logMessage`: the daemon's log, for sessions that asked for it.
public struct LogMessageNotification: OutgoingNotification {
    public static let method = "window/logMessage"
    /// LSP MessageType: 1 error, 2 warning, 3 info, 4 log.
    public let type: Int
    public let message: String

    public init(type: Int, message: String) {
        self.type = type
        self.message = message
    }

    public var params: JSON { ["type": JSON(type), "message": JSON(message)] }
}

/// `textDocument/publishDiagnostics`: integrity findings on the lines of an open dataset file.
public struct PublishDiagnosticsNotification: OutgoingNotification {
    public static let method = "textDocument/publishDiagnostics"
    public let uri: String
    public let version: Int?
    /// LSP `Diagnostic` objects.
    public let diagnostics: [JSON]

    public init(uri: String, version: Int?, diagnostics: [JSON]) {
        self.uri = uri
        self.version = version
        self.diagnostics = diagnostics
    }

    public var params: JSON {
        let params: JSON = ["uri": JSON(uri), "diagnostics": JSON.array(diagnostics)]
        if let version { params["version"] = JSON(version) }
        return params
    }
}
