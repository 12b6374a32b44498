import DistillJSON

/// `initialized`: the client's acknowledgement of `initialize` (LSP); nothing to do.
public struct InitializedNotification: NotificationType {
    public static let method = "initialized"
    public init(params: Field) throws {}
}

/// `exit`: ends the session; the exit status says whether `shutdown` came first.
public struct ExitNotification: NotificationType {
    public static let method = "exit"
    public init(params: Field) throws {}
}

/// `$/cancelRequest`: cancels a request in flight; an id not in flight is ignored.
public struct CancelRequestNotification: NotificationType {
    public static let method = "$/cancelRequest"
    public let id: RequestID

    public init(params: Field) throws {
        let field = try params.required("id")
        guard let id = RequestID(field.json) else { throw field.fail("must be a string or a number, got \(field.json.kindDescription)") }
        self.id = id
    }
}

/// `$/setTrace`: which log messages the session receives as `window/logMessage`.
public struct SetTraceNotification: NotificationType {
    public static let method = "$/setTrace"
    /// "off", "messages" or "verbose"; anything else reads as "off".
    public let value: String?

    public init(params: Field) throws { value = params.child("value")?.json.stringValue }
}
