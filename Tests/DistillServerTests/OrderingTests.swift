import DistillJSON
import DistillServer
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Replies decided when a request is read still wait for the barriers read before it,
/// and work accepted before the input ends is finished and sent.
struct OrderingTests {
    @Test func readTimeErrorsAreAnsweredAfterEarlierBarriers() {
        for _ in 0..<10 {
            let client = TestClient()
            client.sendRaw(
                [
                    #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
                    #"{"jsonrpc":"2.0","id":2,"method":"no/such/method"}"#,
                    #"{"jsonrpc":"2.0","id":3,"method":"teacher/load","params":{"name":"t","path":"builtin:demo"}}"#,
                    #"{"jsonrpc":"1.0","id":6,"method":"distilld/ping"}"#,
                    #"{"jsonrpc":"2.0","id":4,"method":"shutdown"}"#,
                    #"{"jsonrpc":"2.0","id":5,"method":"distilld/ping"}"#,
                ].joined(separator: "\n") + "\n")
            var ids: [Int] = []
            var codes: [Int?] = []
            for _ in 0..<6 {
                guard let m = client.receive() else { break }
                ids.append(m["id"]?.intValue ?? -1)
                codes.append(m["error"]?["code"]?.intValue)
            }
            #expect(ids == [1, 2, 3, 6, 4, 5])
            #expect(codes == [nil, -32601, nil, -32600, nil, -32600])
        }
    }

    @Test func diagnosticsOfALastDidOpenAreSentBeforeTheSessionEnds() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distilld-ordering-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("pairs.jsonl")
        let text = #"{"id":"same","full":"The cat sat.","simplified":"the cat sat"}"# + "\n"
        try text.write(to: file, atomically: true, encoding: .utf8)
        let uri = "file://" + file.path
        for run in 0..<20 {
            let client = TestClient()
            #expect(client.request("dataset/load", ["name": "ds", "path": JSON(file.path)])["result"] != nil)
            client.send([
                "jsonrpc": "2.0", "method": "textDocument/didOpen",
                "params": ["textDocument": ["uri": JSON(uri), "languageId": "jsonl", "version": 1, "text": JSON(text)]],
            ])
            if run % 2 == 1 {
                client.send(["jsonrpc": "2.0", "id": 2, "method": "shutdown"])
                client.send(["jsonrpc": "2.0", "method": "exit"])
            } else {
                client.closeInput()
            }
            var methods: [String] = []
            while let m = client.receive() {
                methods.append(m["method"]?.stringValue ?? "reply \(m["id"]?.intValue ?? -1)")
            }
            let expected = run % 2 == 1 ? ["textDocument/publishDiagnostics", "reply 2"] : ["textDocument/publishDiagnostics"]
            #expect(methods == expected, "run \(run)")
        }
    }
}
