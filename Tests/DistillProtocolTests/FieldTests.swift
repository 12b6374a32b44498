import DistillJSON
import DistillProtocol
import Testing

/// `Field`: every value read from a request keeps its JSON path, and every complaint about
/// it names that path in the message and in `data.field`.
struct FieldTests {
    let params = Field(json(#"{"a": {"b": [10, {"c": "x"}, null]}, "n": null, "s": "", "i": 5}"#), path: "params")

    @Test func pathsFollowMembersAndElements() throws {
        let b = try params.required("a").required("b")
        #expect(b.path == "params.a.b")
        #expect(b.element(1)?.path == "params.a.b[1]")
        #expect(b.element(1)?.child("c")?.path == "params.a.b[1].c")
        #expect(try b.array().map(\.path) == ["params.a.b[0]", "params.a.b[1]", "params.a.b[2]"])
        #expect(try params.members().map(\.value.path) == ["params.a", "params.n", "params.s", "params.i"])
        #expect(try params.required("a").members().map(\.key) == ["b"])
        // An element that is there but null is still an element; a null member is absent.
        #expect(b.element(2)?.json.isNull == true)
        #expect(b.element(3) == nil && b.element(-1) == nil)
        #expect(params.child("n") == nil && params.child("missing") == nil)
    }

    @Test func requiredNamesTheMissingMember() {
        expectInvalidParams(field: "params.missing", "is required") { _ = try params.required("missing") }
        expectInvalidParams(field: "params.n", "is required") { _ = try params.required("n") }
        expectInvalidParams(field: "params.a.b[1].d", "is required") {
            _ = try params.required("a").required("b").element(1)!.required("d")
        }
    }

    /// Each typed accessor accepts its kind and refuses every other kind, naming what it got.
    @Test func typedAccessorsRefuseOtherKindsNamingThem() throws {
        for (text, words) in everyKind {
            let f = Field(json(text), path: "params.x")
            let kind = json(text).kind
            if kind != .object {
                expectInvalidParams(field: "params.x", "must be an object, got \(words)") { _ = try f.object() }
                expectInvalidParams(field: "params.x", "must be an object, got \(words)") { _ = try f.members() }
            }
            if kind != .array {
                expectInvalidParams(field: "params.x", "must be an array, got \(words)") { _ = try f.array() }
            }
            if kind != .string {
                expectInvalidParams(field: "params.x", "must be a string, got \(words)") { _ = try f.string() }
                expectInvalidParams(field: "params.x", "must be a string, got \(words)") { _ = try f.nonEmptyString() }
                expectInvalidParams(field: "params.x", "must be a string, got \(words)") { _ = try f.oneOf(["a"]) }
            }
            if kind != .bool {
                expectInvalidParams(field: "params.x", "must be true or false, got \(words)") { _ = try f.bool() }
            }
            if kind != .integer {
                // 1.5 and 1.0 are numbers but not integers.
                expectInvalidParams(field: "params.x", "must be an integer, got \(words)") { _ = try f.int() }
            }
            if kind != .integer && kind != .real {
                expectInvalidParams(field: "params.x", "must be a number, got \(words)") { _ = try f.double() }
            }
        }
        #expect(try Field(json("{}"), path: "p").object().path == "p")
        #expect(try Field(json("true"), path: "p").bool() == true)
        #expect(try Field(json("false"), path: "p").bool() == false)
        #expect(try Field(json("-3"), path: "p").int() == -3)
        #expect(try Field(json("-3"), path: "p").double() == -3)
        #expect(try Field(json("2.5e-3"), path: "p").double() == 2.5e-3)
        #expect(try Field(json(#""é""#), path: "p").string() == "é")
        #expect(try Field(json(#""é""#), path: "p").nonEmptyString() == "é")
    }

    /// JSON has no non-finite numbers; the strings that stand for them in replies are not numbers in requests.
    @Test func nonFiniteSpellingsAreNotNumbers() {
        for text in [#""Infinity""#, #""-Infinity""#, #""NaN""#] {
            expectInvalidParams(field: "params.t", "must be a number, got a string") {
                _ = try Field(json(text), path: "params.t").double()
            }
        }
        expectInvalidParams(field: "params.x", "must be an integer, got a number") { _ = try Field(json("1.0"), path: "params.x").int() }
    }

    @Test func integerBoundsAreInclusiveAndNamed() throws {
        let f = Field(json("5"), path: "params.k")
        #expect(try f.int(min: 5, max: 5) == 5)
        expectInvalidParams(field: "params.k", "must be at least 6, got 5") { _ = try f.int(min: 6) }
        expectInvalidParams(field: "params.k", "must be at most 4, got 5") { _ = try f.int(max: 4) }
        expectInvalidParams(field: "params.k", "must be at least 6, got 5") { _ = try f.int(min: 6, max: 4) }
    }

    @Test func emptyStringsAreRefusedWhereANameIsNeeded() throws {
        expectInvalidParams(field: "params.s", "must not be empty") { _ = try params.required("s").nonEmptyString() }
        #expect(try params.required("s").string() == "")
    }

    @Test func oneOfListsTheAllowedValues() throws {
        let f = Field(json(#""loud""#), path: "params.level")
        #expect(try Field(json(#""b""#), path: "p").oneOf(["a", "b"]) == "b")
        let error = responseError { _ = try f.oneOf(["quiet", "normal"]) }
        #expect(error?.code == .invalidParams)
        #expect(error?.message == #"params.level: unknown value "loud"; expected one of quiet, normal"#)
        #expect(error?.data?["field"]?.stringValue == "params.level")
        #expect(error?.data?["allowed"]?.arrayValue?.compactMap(\.stringValue) == ["quiet", "normal"])
    }

    @Test func unknownKeysAreRefusedNamingTheKeyAndTheKnownOnes() throws {
        try params.rejectUnknownKeys(["a", "n", "s", "i"])
        try Field(json("{}"), path: "params").rejectUnknownKeys([])
        expectInvalidParams(field: "params.i", "unknown field; expected one of a, n, s") {
            try params.rejectUnknownKeys(["s", "n", "a"])
        }
        expectInvalidParams(field: "params.a.b", "unknown field; expected one of ") {
            try params.required("a").rejectUnknownKeys([])
        }
    }

    @Test func failCarriesExtraData() {
        let error = Field(json("1"), path: "params.q").fail("is odd", extra: [("limit", JSON(3)), ("why", "because")])
        #expect(error.message == "params.q: is odd")
        #expect(error.data?.keys == ["field", "limit", "why"])
        #expect(error.data?["limit"]?.intValue == 3 && error.data?["why"]?.stringValue == "because")
    }

    /// Named params only: absent or null params read as `{}`, anything but an object is refused.
    @Test func paramsAreAnObjectOrNothing() throws {
        #expect(try Field.params(nil).json.count == 0)
        #expect(try Field.params(nil).path == "params")
        #expect(try Field.params(JSON.null).json.isObject)
        #expect(try Field.params(json(#"{"k": 1}"#)).required("k").path == "params.k")
        for (text, words) in everyKind where text != "{}" && text != "null" {
            expectInvalidParams(field: "params", "this method takes named params (an object), got \(words)") {
                _ = try Field.params(json(text))
            }
        }
    }
}
