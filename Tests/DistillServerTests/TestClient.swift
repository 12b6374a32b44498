import DistillJSON
import DistillServer
import DistillTransport
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Drives a real in-process `DistillServer` session over a pair of pipes, exactly
/// as the executable does over stdin/stdout.
/// Unchecked: the serving thread writes only `ending`, before signalling `finished`; the rest is the test thread's.
final class TestClient: @unchecked Sendable {
    let server: DistillServer
    private let toServer: Int32
    private let fromServer: Int32
    private var framer: MessageFramer
    private var pending: [JSON] = []
    /// What the server's thread reports; the thread holds this and not the client, so that a
    /// client going away closes its input and lets the server end (a thread holding the client
    /// kept every test's server, and its registry, alive to the end of the process).
    private final class Outcome: @unchecked Sendable {
        let finished = DispatchSemaphore(value: 0)
        var ending: Session.Ending?  // written before `finished` is signalled, read after
    }
    private let outcome = Outcome()
    var ending: Session.Ending? { outcome.ending }
    let framing: Framing

    init(framing: Framing = .lines, options: ServerOptions = ServerOptions()) {
        var a: [Int32] = [0, 0]
        var b: [Int32] = [0, 0]
        pipe(&a)
        pipe(&b)
        toServer = a[1]
        fromServer = b[0]
        self.framing = framing
        framer = MessageFramer(framing: framing)
        server = DistillServer(options: options)
        let connection = Connection(input: a[0], output: b[1], maxMessageBytes: options.maxMessageBytes)
        let (serverIn, serverOut) = (a[0], b[1])
        let (server, outcome) = (server, outcome)
        let thread = Thread {
            outcome.ending = server.serve(connection)
            close(serverIn)
            close(serverOut)
            outcome.finished.signal()
        }
        thread.start()
    }

    /// Closing twice would close whatever another test's pipe() got the number next: track it.
    private var inputClosed = false

    /// Ends the session as a client hanging up would, and waits (at most 10 s) for the server
    /// to finish, reading what it still sends so that it never blocks on a full pipe.
    deinit {
        if !inputClosed { close(toServer) }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let deadline = Date(timeIntervalSinceNow: 10)
        while deadline.timeIntervalSinceNow > 0 {
            var ready = pollfd(fd: fromServer, events: Int16(POLLIN), revents: 0)
            let polled = poll(&ready, 1, Int32(max(1, deadline.timeIntervalSinceNow * 1000)))
            if polled == 0 { break }
            if polled < 0 { continue }
            if read(fromServer, &chunk, chunk.count) <= 0 { break }
        }
        _ = outcome.finished.wait(timeout: .now() + 10)
        close(fromServer)
    }

    func sendRaw(_ text: String) {
        _ = Array(text.utf8).withUnsafeBytes { Connection.writeAll(toServer, $0) }
    }

    func send(_ message: JSON) {
        let framed = MessageFramer.frame(message.serialized(), as: framing)
        _ = framed.withUnsafeBytes { Connection.writeAll(toServer, $0) }
    }

    /// The next message from the server (a reply or a notification), or nil at end of stream
    /// or when `timeout` seconds pass first.
    func receive(timeout: Double? = nil) -> JSON? {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let deadline = timeout.map { Date(timeIntervalSinceNow: $0) }
        while pending.isEmpty {
            if let deadline {
                var ready = pollfd(fd: fromServer, events: Int16(POLLIN), revents: 0)
                let left = Int32(max(0, min(deadline.timeIntervalSinceNow * 1000, 3_600_000)).rounded(.up))
                let polled = poll(&ready, 1, left)
                if polled == 0 { return nil }
                if polled < 0 { continue }  // interrupted: look again
            }
            let n = read(fromServer, &chunk, chunk.count)
            if n <= 0 { return nil }
            for event in framer.feed(Array(chunk[..<n])) {
                if case .message(let body) = event { pending.append(try! JSON.parse(body)) }
            }
        }
        return pending.removeFirst()
    }

    /// Sends a request and returns its reply, skipping notifications.
    func request(_ method: String, _ params: JSON? = nil, id: JSON = 1) -> JSON {
        let message: JSON = ["jsonrpc": "2.0", "id": id, "method": JSON(method)]
        if let params { message["params"] = params }
        send(message)
        while let m = receive() {
            if m["method"] == nil { return m }
        }
        // Fail the test that asked, not the whole test process.
        return ["error": ["code": -1, "message": "the server closed the stream"]]
    }

    func closeInput() {
        guard !inputClosed else { return }
        inputClosed = true
        close(toServer)
    }

    /// Waits for the session to end and returns how it ended.
    func waitForEnd() -> Session.Ending? {
        // Signalled again, so that a second wait (and the deinit's) does not wait in vain.
        if outcome.finished.wait(timeout: .now() + 10) == .success { outcome.finished.signal() }
        return outcome.ending
    }
}
