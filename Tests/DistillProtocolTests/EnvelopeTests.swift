import DistillJSON
import DistillProtocol
import Testing

/// `IncomingMessage.decode` on every envelope JSON-RPC 2.0 defines: requests with each kind
/// of id, notifications, responses, and each way an envelope can be wrong.
struct EnvelopeTests {
    /// A decoded message in a form tests can compare.
    enum Decoded: Equatable {
        case request(id: String, method: String, params: String?)
        case notification(method: String, params: String?)
        case response(id: String)
        /// Code, message and the id to answer with (its JSON text, nil when none could be read).
        case failure(code: Int, message: String, id: String?)
    }

    static func decode(_ text: String) -> Decoded {
        switch IncomingMessage.decode(json(text)) {
        case .success(.request(let id, let method, let params)):
            return .request(id: id.json.serializedString(), method: method, params: params?.serializedString())
        case .success(.notification(let method, let params)):
            return .notification(method: method, params: params?.serializedString())
        case .success(.response(let id)):
            return .response(id: id.serializedString())
        case .failure(let envelope):
            return .failure(code: envelope.error.code.rawValue, message: envelope.error.message, id: envelope.id?.serializedString())
        }
    }

    static func invalid(_ message: String, id: String?) -> Decoded {
        .failure(code: -32600, message: "Invalid request: " + message, id: id)
    }

    @Test func requestsEchoTheirIdWithItsType() {
        #expect(Self.decode(#"{"jsonrpc":"2.0","id":1,"method":"m"}"#) == .request(id: "1", method: "m", params: nil))
        #expect(Self.decode(#"{"jsonrpc":"2.0","id":"1","method":"m"}"#) == .request(id: #""1""#, method: "m", params: nil))
        #expect(Self.decode(#"{"jsonrpc":"2.0","id":-7,"method":"m"}"#) == .request(id: "-7", method: "m", params: nil))
        #expect(Self.decode(#"{"jsonrpc":"2.0","id":2.5,"method":"m"}"#) == .request(id: "2.5", method: "m", params: nil))
        #expect(Self.decode(#"{"jsonrpc":"2.0","id":"","method":"m"}"#) == .request(id: #""""#, method: "m", params: nil))
        // An explicit null id is a request (JSON-RPC 2.0 discourages it), answered with null.
        #expect(Self.decode(#"{"jsonrpc":"2.0","id":null,"method":"m"}"#) == .request(id: "null", method: "m", params: nil))
    }

    @Test func paramsMayBeAnObjectAnArrayNullOrAbsent() {
        #expect(
            Self.decode(#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":1}}"#) == .request(id: "1", method: "m", params: #"{"a":1}"#))
        #expect(Self.decode(#"{"jsonrpc":"2.0","id":1,"method":"m","params":[1,2]}"#) == .request(id: "1", method: "m", params: "[1,2]"))
        #expect(Self.decode(#"{"jsonrpc":"2.0","id":1,"method":"m","params":{}}"#) == .request(id: "1", method: "m", params: "{}"))
        // Null params read as absent.
        #expect(Self.decode(#"{"jsonrpc":"2.0","id":1,"method":"m","params":null}"#) == .request(id: "1", method: "m", params: nil))
        #expect(Self.decode(#"{"jsonrpc":"2.0","method":"n","params":null}"#) == .notification(method: "n", params: nil))
        for (text, words) in everyKind where !["{}", "[]", "null"].contains(text) {
            #expect(
                Self.decode(#"{"jsonrpc":"2.0","id":3,"method":"m","params":"# + text + "}")
                    == Self.invalid("params must be an object, an array or null, got \(words)", id: "3"))
            #expect(
                Self.decode(#"{"jsonrpc":"2.0","method":"m","params":"# + text + "}")
                    == Self.invalid("params must be an object, an array or null, got \(words)", id: nil))
        }
    }

    @Test func notificationsHaveNoId() {
        #expect(Self.decode(#"{"jsonrpc":"2.0","method":"initialized"}"#) == .notification(method: "initialized", params: nil))
        #expect(
            Self.decode(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":4}}"#)
                == .notification(method: "$/cancelRequest", params: #"{"id":4}"#))
    }

    /// Replies to server-to-client requests carry a result or an error and no method.
    @Test func responsesAreRecognisedByResultOrError() {
        #expect(Self.decode(#"{"jsonrpc":"2.0","id":9,"result":null}"#) == .response(id: "9"))
        #expect(Self.decode(#"{"jsonrpc":"2.0","id":"x","error":{"code":1,"message":"no"}}"#) == .response(id: #""x""#))
        #expect(Self.decode(#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}}"#) == .response(id: "null"))
        // Without an id it answers nothing: it is a malformed request.
        #expect(Self.decode(#"{"jsonrpc":"2.0","result":1}"#) == Self.invalid("method is missing", id: nil))
        // With a method it is a request, whatever else it carries.
        #expect(Self.decode(#"{"jsonrpc":"2.0","id":1,"method":"m","result":1}"#) == .request(id: "1", method: "m", params: nil))
    }

    @Test func idsOfOtherKindsAreRefusedAndAnsweredWithNull() {
        for (text, words) in everyKind where ["{}", "[]", "true"].contains(text) {
            #expect(
                Self.decode(#"{"jsonrpc":"2.0","id":"# + text + #","method":"m"}"#)
                    == Self.invalid("id must be a string, a number or null, got \(words)", id: nil))
        }
        // The id is read first: a bad id wins over a bad version.
        #expect(
            Self.decode(#"{"jsonrpc":"1.0","id":false,"method":"m"}"#)
                == Self.invalid("id must be a string, a number or null, got a boolean", id: nil))
    }

    @Test func theVersionMustBeExactly2Point0() {
        for version in [nil, #""1.0""#, "2.0", "2", #""2.0 ""#, "null"] {
            let member = version.map { #""jsonrpc":"# + $0 + "," } ?? ""
            #expect(
                Self.decode("{" + member + #""id":"r","method":"m"}"#) == Self.invalid(#"jsonrpc must be exactly "2.0""#, id: #""r""#),
                "jsonrpc \(version ?? "absent")")
            #expect(Self.decode("{" + member + #""method":"m"}"#) == Self.invalid(#"jsonrpc must be exactly "2.0""#, id: nil))
        }
    }

    @Test func theMethodMustBeAString() {
        #expect(Self.decode(#"{"jsonrpc":"2.0","id":5}"#) == Self.invalid("method is missing", id: "5"))
        for (text, words) in everyKind where text != #""text""# {
            #expect(
                Self.decode(#"{"jsonrpc":"2.0","id":5,"method":"# + text + "}")
                    == Self.invalid("method must be a string, got \(words)", id: "5"))
        }
        // The version is checked before the method.
        #expect(Self.decode(#"{"id":5,"method":5}"#) == Self.invalid(#"jsonrpc must be exactly "2.0""#, id: "5"))
    }

    @Test func aMessageMustBeAnObject() {
        for (text, words) in everyKind where text != "{}" {
            #expect(Self.decode(text) == Self.invalid("a message must be an object, got \(words)", id: nil))
        }
    }
}
