import DistillJSON
import DistillProtocol
import DistillSync
import DistillTransport

#if canImport(Glibc)
    import Glibc
#endif

/// Reports `$/progress` for a request that carried a `workDoneToken`.
///
/// Nothing is sent for work that finishes within `threshold` seconds; after that
/// a `begin` (at 0%), `report`s with whole percentages rising above it, and an
/// `end` on completion. For an MCP call (`mcp`) the same percentages go out as MCP's
/// `notifications/progress`, which has no begin or end.
public final class ProgressReporter: Sendable {
    let token: JSON
    let title: String
    let connection: Connection
    let threshold: Double
    let mcp: Bool
    private let started = ProgressReporter.now()
    /// Held while a notification is sent too, so `begin`, the reports and `end` go out in order.
    private let state = Mutex(State())

    private struct State {
        var begun = false
        var lastPercent = -1
        var finished = false
    }

    init(token: JSON, title: String, connection: Connection, threshold: Double = 0.5, mcp: Bool = false) {
        self.token = token
        self.title = title
        self.connection = connection
        self.threshold = threshold
        self.mcp = mcp
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// `fraction` in [0, 1]; cheap to call often.
    public func report(_ fraction: Double, message: String? = nil) {
        let percent = Int((min(max(fraction, 0), 1) * 100).rounded(.down))
        state.withLock { state in
            guard !state.finished else { return }
            if !state.begun {
                guard Self.now() - started >= threshold else { return }
                state.begun = true
                // The begin says 0% (and carries the message), so a report follows only once
                // the percentage has risen past it.
                let value: JSON = ["kind": "begin", "title": JSON(title), "cancellable": true, "percentage": JSON(0)]
                if let message { value["message"] = JSON(message) }
                send(value)
                state.lastPercent = 0
            }
            guard percent > state.lastPercent else { return }
            state.lastPercent = percent
            let value: JSON = ["kind": "report", "percentage": JSON(percent)]
            if let message { value["message"] = JSON(message) }
            send(value)
        }
    }

    func end(_ message: String) {
        state.withLock { state in
            guard !state.finished else { return }
            state.finished = true
            if state.begun && !mcp { send(["kind": "end", "message": JSON(message)]) }
        }
    }

    private func send(_ value: JSON) {
        if mcp {
            let percent = value["percentage"]?.intValue ?? 0
            connection.send(
                OutgoingMessage.notification(
                    MCPProgressNotification(token: token, percent: percent, message: value["message"]?.stringValue)))
            return
        }
        connection.send(OutgoingMessage.notification(ProgressNotification(token: token, value: value)))
    }
}
