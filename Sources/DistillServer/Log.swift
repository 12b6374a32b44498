import DistillJSON
import DistillProtocol
import DistillSync
import DistillTransport

#if canImport(Glibc)
    import Glibc
#endif

/// Severity, ordered as LSP's MessageType (error = 1 … debug = 5).
public enum LogLevel: Int, Comparable, Sendable, CaseIterable {
    case error = 1, warning = 2, info = 3, log = 4, debug = 5

    public init?(name: String) {
        switch name.lowercased() {
        case "error": self = .error
        case "warning", "warn": self = .warning
        case "info": self = .info
        case "log", "verbose": self = .log
        case "debug", "trace": self = .debug
        default: return nil
        }
    }

    public var name: String {
        switch self {
        case .error: "error"
        case .warning: "warning"
        case .info: "info"
        case .log: "log"
        case .debug: "debug"
        }
    }

    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
}

/// Logs go to stderr (never stdout, which carries the protocol) and, for
/// sessions that asked, to the client as `window/logMessage`.
public final class Logger: @unchecked Sendable {
    public let level: LogLevel
    private let lock = Mutex()
    private var subscribers: [ObjectIdentifier: (LogLevel, Connection)] = [:]

    public init(level: LogLevel) { self.level = level }

    public func subscribe(_ connection: Connection, level: LogLevel?) {
        lock.withLock {
            if let level {
                subscribers[ObjectIdentifier(connection)] = (level, connection)
            } else {
                subscribers[ObjectIdentifier(connection)] = nil
            }
        }
    }

    public func callAsFunction(_ level: LogLevel, _ message: @autoclosure () -> String) {
        let forward = lock.withLock { subscribers.values.filter { level <= $0.0 } }
        guard level <= self.level || !forward.isEmpty else { return }
        let text = message()
        if level <= self.level {
            let line = "distilld[\(getpid())] \(level.name): \(text)\n"
            _ = Array(line.utf8).withUnsafeBytes { Connection.writeAll(2, $0) }
        }
        for (_, connection) in forward {
            connection.send(OutgoingMessage.logMessage(level: level, text), droppable: true)
        }
    }
}

extension OutgoingMessage {
    static func logMessage(level: LogLevel, _ text: String) -> JSON {
        notification(LogMessageNotification(type: level.rawValue, message: text))
    }
}
