import DistillJSON
import DistillServer
import Testing

struct JSONRPCTests {
    @Test func idsAreEchoedWithTheirType() {
        let client = TestClient()
        #expect(client.request("distilld/ping", id: "7")["id"]?.stringValue == "7")
        let numeric = client.request("distilld/ping", id: 7)
        #expect(numeric["id"]?.kind == .integer)
        #expect(numeric["id"]?.intValue == 7)
        #expect(client.request("distilld/ping", id: 2.5)["id"]?.doubleValue == 2.5)
    }

    @Test func notificationsAreNeverAnswered() {
        let client = TestClient()
        client.send(["jsonrpc": "2.0", "method": "no/such/notification"])
        client.send(["jsonrpc": "2.0", "method": "initialized", "params": [:] as JSON])
        client.send(["jsonrpc": "2.0", "id": 1, "method": "distilld/ping"])
        let first = client.receive()
        #expect(first?["id"]?.intValue == 1)
    }

    @Test func unknownMethodIsMethodNotFound() {
        let reply = TestClient().request("no/such/method")
        #expect(reply["error"]?["code"]?.intValue == -32601)
    }

    @Test func paramsMayBeAbsentObjectArrayOrNull() {
        let client = TestClient()
        #expect(client.request("distilld/ping")["result"]?["pong"]?.boolValue == true)
        #expect(client.request("distilld/ping", JSON.null)["result"] != nil)
        #expect(client.request("distilld/ping", [:] as JSON)["result"] != nil)
        // ping takes named params: a positional array is valid JSON-RPC but invalid params here.
        let positional = client.request("distilld/ping", [1, 2] as JSON)
        #expect(positional["error"]?["code"]?.intValue == -32602)
        #expect(positional["error"]?["data"]?["field"]?.stringValue == "params")
    }

    @Test func malformedEnvelopesAreInvalidRequests() {
        let client = TestClient()
        client.sendRaw(#"{"jsonrpc":"1.0","id":3,"method":"distilld/ping"}"# + "\n")
        let wrongVersion = client.receive()
        #expect(wrongVersion?["error"]?["code"]?.intValue == -32600)
        #expect(wrongVersion?["id"]?.intValue == 3)
        client.sendRaw(#"{"jsonrpc":"2.0","id":4,"method":5}"# + "\n")
        #expect(client.receive()?["error"]?["code"]?.intValue == -32600)
        client.sendRaw(#"{"jsonrpc":"2.0","id":{"x":1},"method":"distilld/ping"}"# + "\n")
        let badID = client.receive()
        #expect(badID?["error"]?["code"]?.intValue == -32600)
        #expect(badID?["id"]?.isNull == true)
        client.sendRaw(#"{"jsonrpc":"2.0","id":5,"method":"distilld/ping","params":"text"}"# + "\n")
        #expect(client.receive()?["error"]?["code"]?.intValue == -32600)
    }

    @Test func parseErrorHasNullIDAndReadingGoesOn() {
        let client = TestClient()
        client.sendRaw("{\"jsonrpc\": oops\n")
        let error = client.receive()
        #expect(error?["error"]?["code"]?.intValue == -32700)
        #expect(error?["id"]?.isNull == true)
        #expect(client.request("distilld/ping")["result"] != nil)
    }

    @Test func batchesGetBatchesBack() {
        let client = TestClient()
        client.sendRaw(
            #"[{"jsonrpc":"2.0","id":1,"method":"distilld/ping"},{"jsonrpc":"2.0","method":"initialized"},{"jsonrpc":"2.0","id":"b","method":"nope"},42]"#
                + "\n")
        let replies = client.receive()
        #expect(replies?.isArray == true)
        #expect(replies?.count == 3)
        #expect(replies?[0]?["id"]?.intValue == 1)
        #expect(replies?[1]?["error"]?["code"]?.intValue == -32601)
        #expect(replies?[2]?["error"]?["code"]?.intValue == -32600)
    }

    @Test func emptyBatchIsOneInvalidRequest() {
        let client = TestClient()
        client.sendRaw("[]\n")
        let reply = client.receive()
        #expect(reply?.isObject == true)
        #expect(reply?["error"]?["code"]?.intValue == -32600)
    }

    @Test func batchOfNotificationsGetsNothing() {
        let client = TestClient()
        client.sendRaw(#"[{"jsonrpc":"2.0","method":"initialized"},{"jsonrpc":"2.0","method":"x"}]"# + "\n")
        client.send(["jsonrpc": "2.0", "id": 9, "method": "distilld/ping"])
        #expect(client.receive()?["id"]?.intValue == 9)
    }
}

struct LifecycleTests {
    @Test func initializeAnnouncesMethodsAndServerInfo() {
        let reply = TestClient().request("initialize", ["processId": JSON.null, "capabilities": [:] as JSON])
        let result = reply["result"]
        #expect(result?["serverInfo"]?["name"]?.stringValue == "distilld")
        let methods = result?["capabilities"]?["methods"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(methods.contains("distilld/ping"))
        #expect(methods.contains("shutdown"))
    }

    @Test func requestsBeforeInitializeAreServed() {
        #expect(TestClient().request("distilld/ping")["result"] != nil)
    }

    @Test func secondInitializeIsRefused() {
        let client = TestClient()
        _ = client.request("initialize", [:] as JSON)
        #expect(client.request("initialize", [:] as JSON, id: 2)["error"]?["code"]?.intValue == -32600)
    }

    @Test func shutdownThenRequestsFailThenExitWithZero() {
        let client = TestClient(framing: .contentLength)
        #expect(client.request("shutdown")["result"]?.isNull == true)
        #expect(client.request("distilld/ping", id: 2)["error"]?["code"]?.intValue == -32600)
        client.send(["jsonrpc": "2.0", "method": "exit"])
        #expect(client.waitForEnd() == .exit(afterShutdown: true))
    }

    @Test func exitWithoutShutdownSaysSo() {
        let client = TestClient()
        client.send(["jsonrpc": "2.0", "method": "exit"])
        #expect(client.waitForEnd() == .exit(afterShutdown: false))
    }

    @Test func endOfInputEndsTheSessionAfterAnsweringWhatWasRead() {
        let client = TestClient()
        client.send(["jsonrpc": "2.0", "id": 1, "method": "distilld/ping"])
        client.closeInput()
        #expect(client.receive()?["id"]?.intValue == 1)
        #expect(client.waitForEnd() == .endOfInput)
    }
}
