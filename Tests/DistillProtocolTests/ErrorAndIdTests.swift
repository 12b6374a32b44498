import DistillJSON
import DistillProtocol
import DistillTestSupport
import Testing

/// Error replies as JSON-RPC 2.0 and LSP define them, and request ids compared by type.
struct ErrorAndIdTests {
    /// The reserved codes keep the values the JSON-RPC 2.0 and LSP specifications give them.
    @Test func standardCodesHaveTheirSpecifiedValues() {
        #expect(ErrorCode.parseError.rawValue == -32700)
        #expect(ErrorCode.invalidRequest.rawValue == -32600)
        #expect(ErrorCode.methodNotFound.rawValue == -32601)
        #expect(ErrorCode.invalidParams.rawValue == -32602)
        #expect(ErrorCode.internalError.rawValue == -32603)
        #expect(ErrorCode.requestCancelled.rawValue == -32800)
    }

    /// Names and codes are unique; distilld's own codes stay in 1000–1099, clear of the
    /// ranges JSON-RPC (−32768…−32000) and LSP (−32899…−32800) reserve.
    @Test func everyCodeIsListedOnceAndOwnCodesAvoidReservedRanges() {
        let all = ErrorCode.all
        #expect(Set(all.map(\.name)).count == all.count)
        #expect(Set(all.map(\.code)).count == all.count)
        let standard: Set<ErrorCode> = [.parseError, .invalidRequest, .methodNotFound, .invalidParams, .internalError, .requestCancelled]
        #expect(standard.isSubset(of: Set(all.map(\.code))))
        for (name, code) in all where !standard.contains(code) {
            #expect((1000...1099).contains(code.rawValue), "\(name) = \(code.rawValue)")
        }
    }

    @Test func anErrorIsCodeMessageAndDataOnlyWhenThereIsSome() {
        let bare = ResponseError(code: .internalError, message: "boom")
        #expect(bare.json.keys == ["code", "message"])
        #expect(bare.json["code"]?.intValue == -32603 && bare.json["message"]?.stringValue == "boom")
        #expect(bare.description == "-32603: boom")
        let detailed = ResponseError(code: .limitExceeded, message: "too big", data: ["limit": 5])
        #expect(detailed.json.keys == ["code", "message", "data"])
        #expect(detailed.json["data"]?["limit"]?.intValue == 5)
    }

    @Test func factoriesSayWhatWentWrong() {
        let cases: [(ResponseError, Int, String)] = [
            (.parseError("unexpected end"), -32700, "Parse error: unexpected end"),
            (.invalidRequest("an empty batch"), -32600, "Invalid request: an empty batch"),
            (.methodNotFound("no/such"), -32601, "Method not found: no/such"),
            (.invalidParams(field: "params.k", "is required"), -32602, "params.k: is required"),
            (.internalError("oops"), -32603, "Internal error: oops"),
            (.cancelled, -32800, "Request cancelled"),
        ]
        for (error, code, message) in cases {
            #expect(error.code.rawValue == code && error.message == message)
            #expect(error.json["code"]?.intValue == code && error.json["message"]?.stringValue == message)
        }
        #expect(ResponseError.methodNotFound("no/such").data?["method"]?.stringValue == "no/such")
        let params = ResponseError.invalidParams(field: "params.k", "is odd", extra: [("got", 3)])
        #expect(params.data?.keys == ["field", "got"])
        #expect(params.data?["field"]?.stringValue == "params.k" && params.data?["got"]?.intValue == 3)
        #expect(ResponseError.parseError("x").data == nil && ResponseError.cancelled.data == nil)
    }

    @Test func outgoingEnvelopes() {
        let result = OutgoingMessage.result(id: "a", ["pong": true])
        #expect(result.serializedString() == #"{"jsonrpc":"2.0","id":"a","result":{"pong":true}}"#)
        let error = OutgoingMessage.error(id: 4, .methodNotFound("x"))
        #expect(
            error.serializedString()
                == #"{"jsonrpc":"2.0","id":4,"error":{"code":-32601,"message":"Method not found: x","data":{"method":"x"}}}"#)
        // An error with no readable id is answered with null.
        #expect(OutgoingMessage.error(id: nil, .parseError("bad"))["id"]?.isNull == true)
        #expect(OutgoingMessage.error(id: nil, .parseError("bad")).keys == ["jsonrpc", "id", "error"])
    }

    // MARK: - RequestID

    /// What an id denotes, written independently of `RequestID`: a string, a number or null.
    enum Denoted: Equatable {
        case string(String), number(Double), null
    }

    static let samples: [(text: String, denoted: Denoted)] = [
        (#""1""#, .string("1")), ("1", .number(1)), ("1.0", .number(1)), ("-0", .number(0)), ("0.0", .number(0)),
        (#""1.0""#, .string("1.0")), ("2.5", .number(2.5)), (#""2.5""#, .string("2.5")), ("null", .null),
        (#""null""#, .string("null")), (#""""#, .string("")), ("7", .number(7)), ("7e0", .number(7)),
        (#""n:7""#, .string("n:7")), (#""s:7""#, .string("s:7")), ("1e20", .number(1e20)), ("-3", .number(-3)),
    ]

    /// Ids are equal when they denote the same JSON value: `"1"` and `1` differ, `1` and
    /// `1.0` are one number; equal ids hash alike, so the in-flight table finds them.
    @Test func idsAreEqualWhenTheyDenoteTheSameValueOfTheSameType() throws {
        for a in Self.samples {
            let ia = try #require(RequestID(json(a.text)))
            #expect(ia.json.serializedString() == json(a.text).serializedString(), "the id is echoed as sent")
            for b in Self.samples {
                let ib = try #require(RequestID(json(b.text)))
                let same = a.denoted == b.denoted
                #expect((ia == ib) == same, "\(a.text) against \(b.text)")
                if same { #expect(ia.hashValue == ib.hashValue, "\(a.text) against \(b.text)") }
            }
        }
        var distinct: [Denoted] = []
        for sample in Self.samples where !distinct.contains(sample.denoted) { distinct.append(sample.denoted) }
        #expect(Set(Self.samples.compactMap { RequestID(json($0.text)) }).count == distinct.count)
    }

    @Test func idsOfOtherKindsDoNotExist() {
        for text in ["{}", "[]", "true", "false", #"{"id":1}"#, "[1]"] {
            #expect(RequestID(json(text)) == nil, "\(text)")
        }
        #expect(RequestID(json(#""x""#))?.description == #""x""#)
    }
}
