import DistillJSON
import Foundation
import Testing

@testable import DistillStore

/// The workspace file at its edges: set-asides, stale temporary files, start-up checks,
/// duplicate names and files that must not be opened.
struct WorkspaceTests {
    let dir = TempDir()

    func teacherFile(_ name: String) -> String {
        dir.write(name, safetensorsBytes([("logits", "F32", [2, 2], f32Bytes([1, 2, 3, 4]))]))
    }

    func workspaceText(teachers: [(String, String)], datasets: [(String, String)] = []) -> String {
        let t = teachers.map { "{\"name\": \"\($0.0)\", \"path\": \"\($0.1)\", \"options\": {}}" }
        let d = datasets.map { "{\"name\": \"\($0.0)\", \"path\": \"\($0.1)\", \"kind\": \"paired\", \"options\": {}}" }
        return "{\"version\": 1, \"teachers\": [\(t.joined(separator: ","))], \"datasets\": [\(d.joined(separator: ","))]}"
    }

    @Test func everySetAsideIsKept() throws {
        let path = dir.file("ws.json")
        for i in 0..<3 {
            dir.write("ws.json", "corrupt \(i)")
            #expect(throws: StoreError.self) { try Workspace(path: path).read() }
        }
        for (name, text) in [("ws.json.bad", "corrupt 0"), ("ws.json.bad.1", "corrupt 1"), ("ws.json.bad.2", "corrupt 2")] {
            #expect(try String(contentsOfFile: dir.file(name), encoding: .utf8) == text)
        }
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func aDirectoryIsRefusedAndLeftAlone() throws {
        let path = dir.file("wsdir")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        let error = #expect(throws: StoreError.self) { try Workspace(path: path).read() }
        #expect(error?.message.contains("is a directory") == true)
        #expect(throws: StoreError.self) { try Workspace(path: path).checkUsable() }
        #expect(FileManager.default.fileExists(atPath: path) && !FileManager.default.fileExists(atPath: path + ".bad"))
    }

    @Test func anUnwritableDirectoryIsRefusedAtStart() throws {
        let error = #expect(throws: StoreError.self) { try Workspace(path: dir.file("missing/ws.json")).checkUsable() }
        #expect(error?.message.contains("cannot be written") == true)
        try Workspace(path: dir.file("ws.json")).checkUsable()
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)  // the probe is gone
    }

    @Test func staleTemporaryFilesAreRemovedOnlyWhenTheirWriterIsGone() throws {
        let dead = pid_t(Int32.max)  // above any pid_max
        let names = [
            "ws.json.tmp.\(dead).7": false, "ws.json.tmp.\(getppid()).8": true, "ws.json.tmp.x.9": true,
            "ws.json.tmp.\(dead)": true, "other.json.tmp.\(dead).1": true,
        ]
        for name in names.keys { dir.write(name, "{") }
        let removed = Workspace(path: dir.file("ws.json")).removeStaleTemporaries()
        #expect(removed == [dir.file("ws.json.tmp.\(dead).7")])
        for (name, kept) in names { #expect(FileManager.default.fileExists(atPath: dir.file(name)) == kept, "\(name)") }
    }

    @Test func aDuplicateNameIsReportedAndTheFirstEntryKept() throws {
        let t = teacherFile("t.safetensors")
        let d = dir.write("d.csv", "context,simplified\nc1,s1\n")
        let path = dir.write("ws.json", workspaceText(teachers: [("same", t)], datasets: [("same", d)]))
        let r = Registry(workspace: Workspace(path: path))
        let warnings = r.restore()
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains("'same' appears more than once") == true)
        #expect(throws: Never.self) { try r.teacher("same") }
    }

    @Test func aFIFOIsNeverOpenedAndStaysInTheWorkspace() throws {
        let fifo = dir.file("pipe.safetensors")
        #expect(mkfifo(fifo, 0o600) == 0)
        let good = teacherFile("t.safetensors")
        let path = dir.write("ws.json", workspaceText(teachers: [("pipe", fifo), ("good", good)]))
        let r = Registry(workspace: Workspace(path: path))
        let warnings = r.restore()  // would block forever in open(2) if the FIFO were opened
        #expect(warnings.count == 1 && warnings[0].contains("a FIFO, not a regular file"))
        #expect(r.list().map(\.name) == ["good"])
        try r.unload(name: "good")
        #expect(try String(contentsOfFile: path, encoding: .utf8).contains("pipe"))
    }
}
