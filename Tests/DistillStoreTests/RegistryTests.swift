import DistillJSON
import DistillSync
import DistillTensor
import Foundation
import Testing

@testable import DistillStore

struct RegistryTests {
    let dir = TempDir()

    func teacherFile(_ name: String, _ vals: [Float], rows: Int = 2) -> String {
        dir.write(name, safetensorsBytes([("logits", "F32", [rows, vals.count / rows], f32Bytes(vals))]))
    }

    @Test func nameExistsReplaceAndFailedReplaceKeepsOldEntry() throws {
        let r = Registry()
        let a = teacherFile("a.safetensors", [1, 2, 3, 4])
        let b = teacherFile("b.safetensors", [5, 6, 7, 8])
        let old = try r.loadTeacher(name: "t", source: TeacherSource(path: a))
        let e = storeError { try r.loadTeacher(name: "t", source: TeacherSource(path: b)) }
        #expect(e?.code == .nameExists)
        #expect(try floats(values(r.teacher("t").outputs)) == [1, 2, 3, 4])
        // A failing replace leaves the old entry.
        let bad = dir.write("bad.safetensors", safetensorsBytes([("logits", "F32", [1, 2], f32Bytes([.nan, 1]))]))
        let e2 = storeError { try r.loadTeacher(name: "t", source: TeacherSource(path: bad), replace: true) }
        #expect(e2?.code == .nonFinite)
        #expect(try r.teacher("t") === old)
        let e3 = storeError { try r.loadTeacher(name: "t", source: TeacherSource(path: dir.file("missing")), replace: true) }
        #expect(e3?.code == .notFound)
        #expect(try r.teacher("t") === old)
        // A good replace swaps; the old entry stays readable for whoever holds it.
        try r.loadTeacher(name: "t", source: TeacherSource(path: b), replace: true)
        #expect(try floats(values(r.teacher("t").outputs)) == [5, 6, 7, 8])
        #expect(floats(values(old.outputs)) == [1, 2, 3, 4])
        try r.unload(name: "t")
        #expect(floats(values(old.outputs)) == [1, 2, 3, 4])
        #expect(storeError { try r.unload(name: "t") }?.code == .unknownName)
        #expect(r.entry("t") == nil)
    }

    @Test func listInfoAndPaging() throws {
        let r = Registry()
        let lines = (1...25).map { "{\"id\":\"e\($0)\",\"full\":\"F\($0)\",\"simplified\":\"S\($0)\"}" }.joined(separator: "\n")
        try r.loadDataset(name: "ds", source: DatasetSource(path: dir.write("d.jsonl", lines)))
        try r.loadTeacher(name: "t", source: TeacherSource(path: teacherFile("t.safetensors", [1, 2, 3, 4])))
        try r.addDataset(name: "inl", inputs: [InputRecord(text: "x", line: 1)])
        #expect(r.list().map(\.name) == ["ds", "inl", "t"])
        #expect(r.list().map(\.type) == [.dataset, .dataset, .teacher])
        let page = try r.examples("ds", offset: 20, limit: 10)
        #expect(page.total == 25)
        #expect(page.examples.map(\.id) == ["e21", "e22", "e23", "e24", "e25"])
        #expect(page.examples.first?.line == 21)
        #expect(try r.examples("ds", offset: 99, limit: 10).examples.isEmpty)
        #expect(try r.examples("inl").inputs.map(\.text) == ["x"])
        #expect(storeError { _ = try r.examples("t") }?.code == .unknownName)
        let ds = try r.dataset("ds")
        #expect(ds.count == 25)
        #expect(ds.kind == .paired)
        #expect(try r.teacher("t").source?.path == dir.file("t.safetensors"))
    }

    @Test func memoryBudgetRefusesUpFront() throws {
        let big = teacherFile("big.safetensors", [Float](repeating: 1, count: 2000))
        let small = teacherFile("small.safetensors", [1, 2, 3, 4])
        let r = Registry(memoryBudget: 5000)
        try r.loadTeacher(name: "s", source: TeacherSource(path: small))
        let e = storeError { try r.loadTeacher(name: "b", source: TeacherSource(path: big)) }
        #expect(e?.code == .budgetExceeded)
        #expect(e?.numbers["budget"] == 5000)
        #expect((e?.numbers["needed"] ?? 0) >= 8000)
        #expect(r.list().map(\.name) == ["s"])
        // Replacing does not count the entry being replaced.
        let bigSize = try #require(fileSize(big))
        let smallSize = try #require(fileSize(small))
        let r2 = Registry(memoryBudget: bigSize + smallSize - 1)
        try r2.loadTeacher(name: "b", source: TeacherSource(path: big))
        try r2.loadTeacher(name: "b", source: TeacherSource(path: big), replace: true)
        #expect(storeError { try r2.loadTeacher(name: "c", source: TeacherSource(path: small)) }?.code == .budgetExceeded)
        #expect(r2.usage.mapped > 8000)
    }

    @Test func workspacePersistsAndRestores() throws {
        let ws = Workspace(path: dir.file("workspace.json"))
        let a = teacherFile("a.safetensors", [1, 2, 3, 4])
        let vocab = dir.write("v.txt", "x\ny\n")
        let d = dir.write("d.csv", "context,simplified\nc1,s1\n")
        do {
            let r = Registry(workspace: ws)
            try r.loadTeacher(name: "t", source: TeacherSource(path: a, options: TeacherOptions(allowNonFinite: true, vocabulary: vocab)))
            try r.loadDataset(name: "d", source: DatasetSource(path: d, options: DatasetOptions(fields: ["full": "context"])))
            try r.loadTeacher(name: "gone", source: TeacherSource(path: teacherFile("gone.safetensors", [1, 2])))
            try r.addTeacher(
                name: "inline",
                outputs: ModelOutputs(
                    kind: .logits, layout: .dense(values: Tensor(float32: [1, 2], shape: [1, 1, 2])), examples: 1, positions: 1, vocab: 2))
            #expect(r.lastWorkspaceError == nil)
        }
        let text = try MappedFile(path: ws.path).withBytes { String(decoding: $0, as: UTF8.self) }
        let json = try JSON.parse(text)
        #expect(json["version"]?.intValue == 1)
        #expect(json["teachers"]?.arrayValue?.map { $0["name"]!.stringValue! } == ["gone", "t"])
        #expect(json["teachers"]?[1]?["format"]?.stringValue == "safetensors")
        #expect(json["teachers"]?[1]?["options"]?["allowNonFinite"]?.boolValue == true)
        #expect(json["datasets"]?[0]?["options"]?["fields"]?["full"]?.stringValue == "context")
        #expect(!text.contains("inline"))
        #expect(!FileManager.default.fileExists(atPath: ws.path + ".tmp"))

        try FileManager.default.removeItem(atPath: dir.file("gone.safetensors"))
        let r = Registry(workspace: ws)
        let warnings = r.restore()
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains("gone") == true)
        #expect(r.list().map(\.name) == ["d", "t"])
        #expect(try r.teacher("t").vocabulary == ["x", "y"])
        #expect(try r.dataset("d").examples.first?.full == "c1")
        // The entry that failed to restore is kept in the file until unloaded.
        try r.unload(name: "d")
        var names = try MappedFile(path: ws.path).withBytes { try JSON.parse($0) }["teachers"]!.arrayValue!.map { $0["name"]!.stringValue! }
        #expect(names == ["gone", "t"])
        try r.unload(name: "gone")
        names = try MappedFile(path: ws.path).withBytes { try JSON.parse($0) }["teachers"]!.arrayValue!.map { $0["name"]!.stringValue! }
        #expect(names == ["t"])
        // A corrupt workspace is set aside, not fatal.
        let bad = Workspace(path: dir.write("bad.json", "{nope"))
        #expect(Registry(workspace: bad).restore().count == 1)
        #expect(FileManager.default.fileExists(atPath: dir.file("bad.json.bad")))
    }

    @Test func concurrentLoadsUnloadsAndReads() throws {
        let r = Registry(workspace: Workspace(path: dir.file("ws.json")))
        let files = (0..<4).map { i in teacherFile("c\(i).safetensors", [Float](repeating: Float(i), count: 64), rows: 4) }
        let held = try r.loadTeacher(name: "n0", source: TeacherSource(path: files[0]))
        let failures = LockedCounter()
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for step in 0..<40 {
                let name = "n\((worker + step) % 3)"
                let file = files[(worker * 7 + step) % 4]
                do {
                    switch step % 4 {
                    case 0, 1:
                        let e = try r.loadTeacher(name: name, source: TeacherSource(path: file), replace: true)
                        let v = floats(values(e.outputs))
                        if Set(v).count != 1 { failures.add() }
                    case 2:
                        try? r.unload(name: name)
                    default:
                        if let e = r.entry(name), case .teacher(let t) = e {
                            let v = floats(values(t.outputs))
                            if v.count != 64 || Set(v).count != 1 { failures.add() }
                        }
                        _ = r.list()
                    }
                } catch {
                    failures.add()
                }
            }
        }
        #expect(failures.value == 0)
        #expect(floats(values(held.outputs)) == [Float](repeating: 0, count: 64))
        #expect(r.lastWorkspaceError == nil)
        // Exactly one of many racing loads without replace wins.
        let winners = LockedCounter()
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            do {
                try r.loadTeacher(name: "race", source: TeacherSource(path: files[i % 4]))
                winners.add()
            } catch let e as StoreError {
                if e.code != .nameExists { failures.add() }
            } catch { failures.add() }
        }
        #expect(winners.value == 1)
        #expect(failures.value == 0)
    }
}

final class LockedCounter: Sendable {
    private let n = Mutex(0)
    func add() { n.withLock { $0 += 1 } }
    var value: Int { n.withLock { $0 } }
}
