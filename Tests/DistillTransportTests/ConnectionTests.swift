import DistillJSON
import DistillTransport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A client that never reads its replies must not hold up the threads that send them.
struct ConnectionTests {
    @Test func sendNeverWaitsForTheClientToRead() {
        var toClient: [Int32] = [0, 0]
        var fromClient: [Int32] = [0, 0]
        pipe(&toClient)
        pipe(&fromClient)
        defer { for fd in toClient + fromClient { close(fd) } }
        let connection = Connection(input: fromClient[0], output: toClient[1], maxMessageBytes: 1 << 20, framing: .lines)
        let payload = JSON(String(repeating: "x", count: 4096))
        let sent = DispatchSemaphore(value: 0)
        // Far more than a pipe holds (64 KiB), and no one reads the other end.
        Thread {
            for i in 0..<256 { connection.send(["jsonrpc": "2.0", "id": JSON(i), "result": payload]) }
            sent.signal()
        }.start()
        #expect(sent.wait(timeout: .now() + 5) == .success, "send blocked on a client that does not read")
        // What was queued is still delivered, whole and in order, once the client reads.
        var framer = MessageFramer(framing: .lines)
        var ids: [Int] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while ids.count < 256 {
            let n = read(toClient[0], &chunk, chunk.count)
            if n <= 0 { break }
            for event in framer.feed(Array(chunk[..<n])) {
                if case .message(let body) = event { ids.append((try? JSON.parse(body))?["id"]?.intValue ?? -1) }
            }
        }
        #expect(ids == Array(0..<256))
        connection.finishWriting()
    }
}
