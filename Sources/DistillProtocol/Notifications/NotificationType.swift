import DistillJSON

/// A notification a client sends, one type per method (`Notifications/CancelRequestNotification.swift`).
///
/// Notifications are never answered; one whose params cannot be read is logged and dropped,
/// as JSON-RPC asks.
public protocol NotificationType: Sendable {
    static var method: String { get }
    init(params: Field) throws
}

/// A notification distilld sends to a client.
public protocol OutgoingNotification: Sendable {
    static var method: String { get }
    var params: JSON { get }
}

extension OutgoingMessage {
    /// The JSON-RPC envelope of an outgoing notification.
    public static func notification(_ notification: some OutgoingNotification) -> JSON {
        self.notification(type(of: notification).method, notification.params)
    }
}
