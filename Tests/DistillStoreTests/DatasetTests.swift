import DistillJSON
import Foundation
import Testing

@testable import DistillStore

struct DatasetTests {
    let dir = TempDir()

    func paired(_ name: String, _ text: String, options: DatasetOptions = DatasetOptions()) throws -> LoadedDataset {
        try DatasetLoader.load(DatasetSource(path: dir.write(name, text), options: options))
    }

    @Test func csvQuotingRules() throws {
        let d = try paired(
            "a.csv",
            "id,full,simplified\r\n1,\"a, b\",\"say \"\"hi\"\"\"\r\n\r\n2,\"multi\nline\nfield\",x\r\n3,,\"\"\r\n")
        #expect(d.examples.map(\.id) == ["1", "2", "3"])
        #expect(d.examples[0].full == "a, b")
        #expect(d.examples[0].simplified == "say \"hi\"")
        #expect(d.examples[1].full == "multi\nline\nfield")
        #expect(d.examples.map(\.line) == [2, 4, 7])
        #expect(d.examples[2].full == "")
        let tsv = try DatasetLoader.load(DatasetSource(path: dir.write("b.tsv", "full\tsimplified\nx, y\tz\n")))
        #expect(tsv.examples[0].full == "x, y")
        #expect(tsv.examples[0].id == "2")
    }

    @Test func csvQuotingErrorsNameTheLine() {
        let stray = storeError { _ = try paired("s.csv", "id,full,simplified\n1,ab\"c,d\n") }
        #expect(stray?.code == .csvQuoting)
        #expect(stray?.line == 2)
        #expect(stray?.message.contains("s.csv:2") == true)
        let open = storeError { _ = try paired("o.csv", "id,full,simplified\n1,x,y\n2,\"never closed,y\n3,a,b\n") }
        #expect(open?.code == .csvQuoting)
        #expect(open?.line == 3)
        let after = storeError { _ = try paired("t.csv", "id,full,simplified\n1,\"x\"y,z\n") }
        #expect(after?.code == .csvQuoting)
        #expect(after?.line == 2)
        let fields = storeError { _ = try paired("f.csv", "id,full,simplified\n1,x\n") }
        #expect(fields?.code == .badLine)
        #expect(fields?.line == 2)
        let column = storeError { _ = try paired("c.csv", "id,context,simplified\n1,x,y\n") }
        #expect(column?.code == .badLine)
        #expect(column?.message.contains("'full'") == true)
    }

    @Test func jsonlErrorsNameTheLine() {
        let notJSON = storeError { _ = try paired("n.jsonl", "{\"id\":\"1\",\"full\":\"a\",\"simplified\":\"b\"}\nnot json\n") }
        #expect(notJSON?.code == .badLine)
        #expect(notJSON?.line == 2)
        #expect(notJSON?.file == dir.file("n.jsonl"))
        let lacking = storeError {
            _ = try paired("l.jsonl", "{\"id\":\"1\",\"full\":\"a\",\"simplified\":\"b\"}\n\n{\"id\":\"2\",\"full\":\"a\"}\n")
        }
        #expect(lacking?.code == .badLine)
        #expect(lacking?.line == 3)
        #expect(lacking?.message.contains("simplified") == true)
        let dup = storeError {
            _ = try paired(
                "d.jsonl", "{\"id\":\"x\",\"full\":\"a\",\"simplified\":\"b\"}\n{\"id\":\"x\",\"full\":\"a\",\"simplified\":\"b\"}\n")
        }
        #expect(dup?.code == .duplicateId)
        #expect(dup?.line == 2)
        let badLabel = storeError { _ = try paired("b.jsonl", "{\"full\":\"a\",\"simplified\":\"b\",\"label\":1.5}\n") }
        #expect(badLabel?.code == .badLine)
    }

    @Test func missingIdsUseLineNumbersAndWarnOnce() throws {
        let d = try paired(
            "m.jsonl",
            "{\"full\":\"a\",\"simplified\":\"b\"}\n{\"id\":7,\"full\":\"c\",\"simplified\":\"d\"}\n\n{\"full\":\"e\",\"simplified\":\"f\"}\n"
        )
        #expect(d.examples.map(\.id) == ["1", "7", "4"])
        #expect(d.warnings.count == 1)
        #expect(!d.idsSynthesized)
    }

    @Test func inputListErrors() {
        let p = dir.write("i.jsonl", "{\"input\":\"a\"}\n{\"prompt\":\"b\"}\n")
        let e = storeError { _ = try DatasetLoader.load(DatasetSource(path: p, kind: .inputs)) }
        #expect(e?.code == .badLine)
        #expect(e?.line == 2)
        let j = dir.write("i.json", "[\"a\",\n 3]")
        let e2 = storeError { _ = try DatasetLoader.load(DatasetSource(path: j, kind: .inputs)) }
        #expect(e2?.code == .badLine)
        #expect(e2?.line == 2)
    }

    @Test func matchingByIdAndByOrder() throws {
        let r = Registry()
        let d = try r.loadDataset(
            name: "d",
            source: DatasetSource(
                path: dir.write(
                    "m.jsonl",
                    (["a", "b", "c", "d"].map { "{\"id\":\"\($0)\",\"full\":\"f\",\"simplified\":\"s\"}" }).joined(separator: "\n"))))
        let m = match(teacherIds: ["c", "x", "a"], dataset: d)
        #expect(m.method == .id)
        #expect(m.pairs == [.init(teacherRow: 2, example: 0), .init(teacherRow: 0, example: 2)])
        #expect(m.unmatchedTeacherRows == [1])
        #expect(m.unmatchedExamples == [1, 3])
        #expect(!m.isComplete)
        let o = match(teacherIds: nil, dataset: d, teacherRows: 6)
        #expect(o.method == .order)
        #expect(o.pairs.count == 4)
        #expect(o.unmatchedTeacherRows == [4, 5])
        #expect(o.unmatchedExamples.isEmpty)
    }
}

/// Options as the workspace file keeps them (the protocol's reading of a request's options is
/// tested with the server).
struct OptionsTests {
    @Test func optionsRoundTripThroughTheWorkspaceFile() throws {
        let t = TeacherOptions(kind: .probs, allowNonFinite: true, vocabSize: 9, vocabulary: "/v.txt", indices: "/i.npy", mask: "/m.npy")
        #expect(try Workspace.teacherOptions(JSON.parse(t.json.serializedString())) == t)
        #expect(try Workspace.teacherOptions(nil) == TeacherOptions())
        #expect(throws: StoreError.self) { try Workspace.teacherOptions(JSON.parse(#"{"kind":"scores"}"#)) }
        #expect(throws: StoreError.self) { try Workspace.teacherOptions(JSON.parse(#"{"bogus":1}"#)) }
        let d = DatasetOptions(fields: ["full": "context", "input": "prompt"], delimiter: 0x3B)
        #expect(try Workspace.datasetOptions(JSON.parse(d.json.serializedString())) == d)
        #expect(throws: StoreError.self) { try Workspace.datasetOptions(JSON.parse(#"{"fields":{"fulll":"x"}}"#)) }
    }
}
