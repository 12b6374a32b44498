import DistillJSON
import DistillServer
import DistillTransport
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Drives a real in-process `DistillServer` session over a pair of pipes, exactly
/// as the executable does over stdin/stdout.
final class TestClient: @unchecked Sendable {
    let server: DistillServer
    private let toServer: Int32
    private let fromServer: Int32
    private var framer: MessageFramer
    private var pending: [JSON] = []
    private let finished = DispatchSemaphore(value: 0)
    private(set) var ending: Session.Ending?
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
        let thread = Thread { [self] in
            ending = server.serve(connection)
            close(serverIn)
            close(serverOut)
            finished.signal()
        }
        thread.start()
    }

    /// Closing twice would close whatever another test's pipe() got the number next: track it.
    private var inputClosed = false

    deinit {
        if !inputClosed { close(toServer) }
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
        _ = finished.wait(timeout: .now() + 10)
        return ending
    }
}
