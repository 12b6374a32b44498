import DistillJSON
import DistillProtocol
import Testing

/// The lifecycle request types: what their params may hold (as Protocol/schemas says), how
/// they are read, and the JSON their responses write.
struct LifecycleRequestTests {
    static func params(_ text: String) throws -> Field { try Field.params(json(text)) }

    /// Each type's `keys` are exactly the members its params schema lists.
    @Test func keysAreThePropertiesOfTheParamsSchema() throws {
        let types: [(method: String, keys: Set<String>)] = [
            (InitializeRequest.method, InitializeRequest.keys), (ShutdownRequest.method, ShutdownRequest.keys),
            (PingRequest.method, PingRequest.keys), (StatusRequest.method, StatusRequest.keys),
            (StopRequest.method, StopRequest.keys),
        ]
        #expect(types.map(\.method) == ["initialize", "shutdown", "distilld/ping", "distilld/status", "distilld/stop"])
        for (method, keys) in types {
            let schema = method.replacingOccurrences(of: "/", with: ".") + ".params.json"
            #expect(try Schemas.properties(schema) == keys, "\(method)")
        }
        let options = try Schemas.load("initialize.params.json")["properties"]?["initializationOptions"]
        let levels = options?["properties"]?["logMessages"]?["enum"]?.arrayValue?.compactMap(\.stringValue)
        #expect(levels == InitializeRequest.logLevels)
    }

    @Test func initializeReadsTheLogLevelItAsksFor() throws {
        #expect(try InitializeRequest(params: Field.params(nil)).logMessages == nil)
        #expect(try InitializeRequest(params: Self.params(#"{"processId": 12, "capabilities": {}}"#)).logMessages == nil)
        #expect(try InitializeRequest(params: Self.params(#"{"initializationOptions": null}"#)).logMessages == nil)
        #expect(try InitializeRequest(params: Self.params(#"{"initializationOptions": {}}"#)).logMessages == nil)
        for level in InitializeRequest.logLevels {
            let request = try InitializeRequest(params: Self.params(#"{"initializationOptions": {"logMessages": ""# + level + #""}}"#))
            #expect(request.logMessages == level)
        }
    }

    @Test func initializeRefusesOptionsItCannotRead() throws {
        for (text, words) in everyKind where text != "{}" && text != "null" {
            expectInvalidParams(field: "params.initializationOptions", "must be an object, got \(words)") {
                _ = try InitializeRequest(params: Self.params(#"{"initializationOptions": "# + text + "}"))
            }
        }
        let error = responseError {
            _ = try InitializeRequest(params: Self.params(#"{"initializationOptions": {"logMessages": "loud"}}"#))
        }
        #expect(error?.code == .invalidParams)
        #expect(
            error?.message
                == #"params.initializationOptions.logMessages: unknown value "loud"; expected one of error, warning, info, log, debug, off"#
        )
        #expect(error?.data?["field"]?.stringValue == "params.initializationOptions.logMessages")
        #expect(error?.data?["allowed"]?.arrayValue?.compactMap(\.stringValue) == InitializeRequest.logLevels)
        expectInvalidParams(field: "params.initializationOptions.logMessages", "must be a string, got a number") {
            _ = try InitializeRequest(params: Self.params(#"{"initializationOptions": {"logMessages": 3}}"#))
        }
    }

    @Test func responsesWriteTheirResults() throws {
        let initialize = InitializeRequest.Response(serverName: "distilld", serverVersion: "9.9", capabilities: ["methods": []])
        #expect(initialize.json.serializedString() == #"{"serverInfo":{"name":"distilld","version":"9.9"},"capabilities":{"methods":[]}}"#)
        #expect(NullResponse().json.isNull)
        #expect(StopRequest.Response().json.serializedString() == #"{"stopping":true}"#)
        let echoed = try PingRequest(params: Self.params(#"{"payload": [1, {"a": null}]}"#))
        #expect(echoed.response.json.serializedString() == #"{"pong":true,"payload":[1,{"a":null}]}"#)
        #expect(try PingRequest(params: Self.params("{}")).response.json.serializedString() == #"{"pong":true}"#)
        var status = StatusRequest.Response(
            serverName: "distilld", serverVersion: "1", pid: 7, uptimeSeconds: 1.5, sessions: 2, requestsServed: 3, residentBytes: 4,
            budgetBytes: nil, entriesResidentBytes: 5, entriesMappedBytes: 6, teachers: 1, datasets: 0, liveJSONValues: 8,
            liveJSONAllocations: 9)
        let json = status.json
        #expect(
            json.keys == ["serverInfo", "pid", "uptimeSeconds", "sessions", "requestsServed", "memory", "teachers", "datasets", "json"])
        #expect(try Set(json.keys) == Schemas.properties("distilld.status.result.json"))
        #expect(json["memory"]?["budgetBytes"]?.isNull == true)
        #expect(json["memory"]?.keys == ["residentBytes", "budgetBytes", "entriesResidentBytes", "entriesMappedBytes"])
        #expect(json["json"]?["liveAllocations"]?.intValue == 9 && json["uptimeSeconds"]?.doubleValue == 1.5)
        status.budgetBytes = 1 << 40
        #expect(status.json["memory"]?["budgetBytes"]?.intValue == 1 << 40)
    }
}

/// The notifications a client sends, and the envelopes of those distilld sends.
struct NotificationTests {
    @Test func cancelRequestNeedsAStringOrNumberId() throws {
        #expect(try CancelRequestNotification(params: Field.params(json(#"{"id": 4}"#))).id == RequestID(json("4")))
        #expect(try CancelRequestNotification(params: Field.params(json(#"{"id": "4"}"#))).id == RequestID(json(#""4""#)))
        expectInvalidParams(field: "params.id", "is required") { _ = try CancelRequestNotification(params: Field.params(nil)) }
        expectInvalidParams(field: "params.id", "is required") {
            _ = try CancelRequestNotification(params: Field.params(json(#"{"id": null}"#)))
        }
        for text in ["true", "{}", "[4]"] {
            expectInvalidParams(field: "params.id", "must be a string or a number, got \(json(text).kindDescription)") {
                _ = try CancelRequestNotification(params: Field.params(json(#"{"id": "# + text + "}")))
            }
        }
        #expect(CancelRequestNotification.method == "$/cancelRequest")
    }

    @Test func setTraceAndTextDocumentNotificationsReadTheirParams() throws {
        #expect(try SetTraceNotification(params: Field.params(json(#"{"value": "verbose"}"#))).value == "verbose")
        #expect(try SetTraceNotification(params: Field.params(nil)).value == nil)
        let open = try TextDocumentNotification(
            .didOpen, params: Field.params(json(#"{"textDocument": {"uri": "file:///d.jsonl", "version": 3, "text": "x"}}"#)))
        #expect(open.uri == "file:///d.jsonl" && open.version == 3 && open.text == "x")
        let change = try TextDocumentNotification(
            .didChange,
            params: Field.params(json(#"{"textDocument": {"uri": "file:///d"}, "contentChanges": [{"text": "old"}, {"text": "new"}]}"#)))
        #expect(change.text == "new" && change.version == nil)
        let save = try TextDocumentNotification(
            .didSave, params: Field.params(json(#"{"textDocument": {"uri": "file:///d"}, "text": "s"}"#)))
        #expect(save.text == "s")
        let close = try TextDocumentNotification(.didClose, params: Field.params(json(#"{"textDocument": {"uri": "file:///d"}}"#)))
        #expect(close.text == nil)
        expectInvalidParams(field: "params.textDocument", "is required") {
            _ = try TextDocumentNotification(.didOpen, params: Field.params(nil))
        }
        expectInvalidParams(field: "params.textDocument.uri", "must be a string, got a number") {
            _ = try TextDocumentNotification(.didClose, params: Field.params(json(#"{"textDocument": {"uri": 1}}"#)))
        }
    }

    /// Outgoing notifications are JSON-RPC notifications (no id) whose params carry exactly
    /// what their schema requires and nothing it does not list.
    @Test func outgoingNotificationsHaveTheirEnvelopeAndSchema() throws {
        let notifications: [(any OutgoingNotification, String, String)] = [
            (ProgressNotification(token: "w1", value: ["kind": "begin", "title": "score"]), "$/progress", "notification.progress.json"),
            (LogMessageNotification(type: 2, message: "slow disk"), "window/logMessage", "notification.logMessage.json"),
            (
                PublishDiagnosticsNotification(uri: "file:///d.jsonl", version: 4, diagnostics: []),
                "textDocument/publishDiagnostics", "notification.publishDiagnostics.json"
            ),
            (
                PublishDiagnosticsNotification(uri: "file:///d.jsonl", version: nil, diagnostics: []),
                "textDocument/publishDiagnostics", "notification.publishDiagnostics.json"
            ),
        ]
        for (notification, method, schema) in notifications {
            let message = OutgoingMessage.notification(notification)
            #expect(message.keys == ["jsonrpc", "method", "params"])
            #expect(message["jsonrpc"]?.stringValue == "2.0" && message["method"]?.stringValue == method)
            let keys = Set(message["params"]?.keys ?? [])
            #expect(try Schemas.required(schema).isSubset(of: keys), "\(method): \(keys)")
            #expect(try keys.isSubset(of: Schemas.properties(schema)), "\(method): \(keys)")
            #expect(message["params"]?.serializedString() == notification.params.serializedString())
        }
        let progress = OutgoingMessage.notification(ProgressNotification(token: 7, value: ["kind": "end"]))
        #expect(progress.serializedString() == #"{"jsonrpc":"2.0","method":"$/progress","params":{"token":7,"value":{"kind":"end"}}}"#)
        let log = OutgoingMessage.notification(LogMessageNotification(type: 1, message: "m"))
        #expect(log.serializedString() == #"{"jsonrpc":"2.0","method":"window/logMessage","params":{"type":1,"message":"m"}}"#)
        let unversioned = PublishDiagnosticsNotification(uri: "file:///x", version: nil, diagnostics: [["message": "m"]])
        #expect(unversioned.params.keys == ["uri", "diagnostics"])
        #expect(unversioned.params["diagnostics"]?[0]?["message"]?.stringValue == "m")
        #expect(PublishDiagnosticsNotification(uri: "file:///x", version: 2, diagnostics: []).params["version"]?.intValue == 2)
    }
}
