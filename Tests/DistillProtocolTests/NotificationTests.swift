import DistillJSON
import DistillProtocol
import DistillTestSupport
import Testing

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
