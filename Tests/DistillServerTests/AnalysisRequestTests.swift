import DistillJSON
import DistillProtocol
import DistillServer
import Testing

/// The analysis requests read their params when the request is read: they wait only for the
/// loaded names they use, and still report the first mistake in the order the params are checked.
struct AnalysisRequestTests {
    static func params(_ text: String) throws -> Field { try Field.params(try JSON.parse(text)) }

    @Test func anAnalysisReadsExactlyTheLoadedNamesItUses() throws {
        let score = try ScoreRequest(
            params: Self.params(
                #"{"teacher": {"teacher": "t"}, "students": {"A": "a", "B": {"path": "builtin:demo"}, "C": {"probs": [[1]]}}, "dataset": "d"}"#
            ))
        #expect(score.ordering == .reading(["t", "a", "d"]))
        let explain = try ExplainRequest(params: Self.params(#"{"teacher": {"probs": [[1]]}, "students": {"A": "a"}}"#))
        #expect(explain.ordering == .reading(["a"]))
        let diagnose = try DiagnoseRequest(
            params: Self.params(
                #"{"dataset": "d", "inputs": "i", "contextGap": {"teacherFull": "f", "teacherSimplified": "s", "student": {"path": "x"}}}"#
            ))
        #expect(diagnose.ordering == .reading(["d", "i", "f", "s"]))
        let sequence = try SequenceRequest(params: Self.params(#"{"teacher": [0.5, 0.5], "students": {"A": [0.5, 0.5]}}"#))
        #expect(sequence.ordering == .reading([]))
    }

    @Test func aPartThatCannotBeReadAddsNoName() throws {
        let score = try ScoreRequest(params: Self.params(#"{"teacher": "t", "students": {"A": {"teacher": 5}, "B": "b"}}"#))
        #expect(score.ordering == .reading(["t", "b"]))
        #expect(throws: ResponseError.self) { try score.students.get()[0].model.get() }
    }

    @Test func aMistakeBeforeTheFirstLookupIsReportedWhenTheRequestIsRead() {
        #expect(throws: ResponseError.self) { try ScoreRequest(params: Self.params(#"{"teacher": 5, "students": {}}"#)) }
        #expect(throws: ResponseError.self) { try ScoreRequest(params: Self.params(#"{"teacher": "t", "students": {}, "x": 1}"#)) }
    }

    /// An unknown teacher is looked up before the loss is read, so it is the error reported even
    /// though the misspelt loss name is found first, when the request is read.
    @Test func theFirstErrorIsTheOneTheChecksMeetFirst() {
        let client = TestClient()
        let unknown = client.request(
            "distill/score", ["teacher": "nosuch", "students": ["A": "nosuch"], "loss": ["name": "bogus"]])
        #expect(unknown["error"]?["code"]?.intValue == 1001)
        #expect(unknown["error"]?["data"]?["name"]?.stringValue == "nosuch")
        // An inline value is read in the handler, before the students' mistakes.
        let inline = client.request(
            "distill/score", ["teacher": ["probs": [[0.5, "x"]]], "students": 5, "worst": -1])
        #expect(inline["error"]?["data"]?["field"]?.stringValue == "params.teacher.probs[0][1]")
        let later = client.request(
            "distill/score", ["teacher": "builtin:nosuch", "students": ["A": ["path": "builtin:demo-student-A"]], "worst": -1])
        #expect(later["error"]?["code"]?.intValue == 1001)
        let worst = client.request(
            "distill/score",
            ["teacher": ["path": "builtin:demo"], "students": ["A": ["path": "builtin:demo-student-A"]], "worst": -1])
        #expect(worst["error"]?["data"]?["field"]?.stringValue == "params.worst")
    }
}
