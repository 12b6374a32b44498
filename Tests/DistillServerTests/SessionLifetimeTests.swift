import DistillJSON
import DistillTransport
import Foundation
import Testing

@testable import DistillServer

#if canImport(Glibc)
    import Glibc
#endif

/// What a session holds on to: nothing once it has ended, so a daemon that serves many
/// clients does not keep every one of them, with the params of every request it sent.
struct SessionLifetimeTests {
    /// A session that answered requests run inline (`distilld/ping`) and on the pool
    /// (`teacher/list`) and then read the end of its input is freed. The scheduler kept
    /// each started item's work, which holds the session, so no session was ever freed.
    @Test func aSessionIsFreedOnceItHasEnded() {
        var input: [Int32] = [0, 0]
        var output: [Int32] = [0, 0]
        #expect(pipe(&input) == 0 && pipe(&output) == 0)
        defer { [input[0], output[0], output[1]].forEach { close($0) } }
        let server = DistillServer(options: ServerOptions())
        weak var weakSession: Session?
        do {
            let connection = Connection(input: input[0], output: output[1], maxMessageBytes: 1 << 20)
            let session = Session(server: server, connection: connection)
            weakSession = session
            let requests =
                #"{"jsonrpc": "2.0", "id": 1, "method": "distilld/ping"}"# + "\n"
                + #"{"jsonrpc": "2.0", "id": 2, "method": "teacher/list"}"# + "\n"
            _ = Array(requests.utf8).withUnsafeBytes { Connection.writeAll(input[1], $0) }
            close(input[1])
            #expect(session.run() == .endOfInput)
        }
        // The pool thread that answered may still be returning from its work item.
        let deadline = Date(timeIntervalSinceNow: 10)
        while weakSession != nil && Date() < deadline { usleep(1000) }
        #expect(weakSession == nil, "the session outlived its end")
    }
}
