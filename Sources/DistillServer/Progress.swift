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
/// `end` on completion.
public final class ProgressReporter: @unchecked Sendable {
    let token: JSON
    let title: String
    let connection: Connection
    let threshold: Double
    private let started = ProgressReporter.now()
    private let lock = Mutex()
    private var begun = false
    private var lastPercent = -1
    private var finished = false

    init(token: JSON, title: String, connection: Connection, threshold: Double = 0.5) {
        self.token = token
        self.title = title
        self.connection = connection
        self.threshold = threshold
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// `fraction` in [0, 1]; cheap to call often.
    public func report(_ fraction: Double, message: String? = nil) {
        let percent = Int((min(max(fraction, 0), 1) * 100).rounded(.down))
        lock.withLock {
            guard !finished else { return }
            if !begun {
                guard Self.now() - started >= threshold else { return }
                begun = true
                // The begin says 0% (and carries the message), so a report follows only once
                // the percentage has risen past it.
                let value: JSON = ["kind": "begin", "title": JSON(title), "cancellable": true, "percentage": JSON(0)]
                if let message { value["message"] = JSON(message) }
                send(value)
                lastPercent = 0
            }
            guard percent > lastPercent else { return }
            lastPercent = percent
            let value: JSON = ["kind": "report", "percentage": JSON(percent)]
            if let message { value["message"] = JSON(message) }
            send(value)
        }
    }

    func end(_ message: String) {
        lock.withLock {
            guard !finished else { return }
            finished = true
            if begun { send(["kind": "end", "message": JSON(message)]) }
        }
    }

    private func send(_ value: JSON) {
        connection.send(OutgoingMessage.notification(ProgressNotification(token: token, value: value)))
    }
}
