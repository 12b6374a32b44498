import DistillJSON
import DistillProtocol
import Testing

/// Runs `body` and returns the `ResponseError` it throws (nil when it throws none).
func responseError(_ body: () throws -> Void) -> ResponseError? {
    do {
        try body()
    } catch let error as ResponseError {
        return error
    } catch {
        Issue.record("threw \(error), not a ResponseError")
    }
    return nil
}

/// Expects `body` to throw invalid params (-32602) about `field`, with `message` after the
/// field in the message and `field` in `data.field`, as every client reads it.
func expectInvalidParams(
    field: String, _ message: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
    guard let error = responseError(body) else {
        Issue.record("no error; expected \(field): \(message)", sourceLocation: sourceLocation)
        return
    }
    #expect(error.code == .invalidParams, sourceLocation: sourceLocation)
    #expect(error.message == "\(field): \(message)", sourceLocation: sourceLocation)
    #expect(error.data?["field"]?.stringValue == field, sourceLocation: sourceLocation)
}

/// One JSON value of every kind, with the words an error message uses for it.
let everyKind: [(json: String, words: String)] = [
    ("{}", "an object"), ("[]", "an array"), (#""text""#, "a string"), ("1", "a number"), ("1.5", "a number"),
    ("true", "a boolean"), ("null", "null"),
]

func json(_ text: String) -> JSON { try! JSON.parse(text) }
