import DistillSystem
import Foundation
import Testing

/// A file replaced whole or not at all, and every byte of a buffer written.
struct FileReplacementTests {
    let directory: String = {
        let d = NSTemporaryDirectory() + "distill-system-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }()

    func contents(_ path: String) -> [UInt8]? { FileManager.default.contents(atPath: path).map { Array($0) } }

    @Test func aCommittedReplacementHoldsEveryByteWrittenAndLeavesNoTemporaryFile() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/f"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("old".utf8)))
        let chunks = (0..<5).map { i in [UInt8](repeating: UInt8(i), count: 100_000 + i) }
        let file = try FileReplacement(path: path, temporary: path + ".tmp")
        for c in chunks { try c.withUnsafeBytes(file.write) }
        #expect(contents(path) == Array("old".utf8), "the old file stays until the commit")
        try file.commit(syncingDirectory: true)
        #expect(contents(path) == chunks.flatMap { $0 })
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["f"])
    }

    @Test func aReplacementDroppedBeforeItsCommitLeavesTheOldFileAlone() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/f"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("old".utf8)))
        do {
            let file = try FileReplacement(path: path, temporary: path + ".tmp")
            try Array("new".utf8).withUnsafeBytes(file.write)
        }
        #expect(contents(path) == Array("old".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["f"])
    }

    @Test func eachFailureNamesItsStepAndRemovesTheTemporaryFile() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let missing = directory + "/no/such/dir/f"
        let create = #expect(throws: FileReplacement.Failure.self) { try FileReplacement(path: missing, temporary: missing + ".tmp") }
        #expect(create?.step == .create && create?.code == ENOENT && create?.reason.isEmpty == false)
        // A non-empty directory cannot be renamed over.
        let target = directory + "/d"
        try FileManager.default.createDirectory(atPath: target + "/inside", withIntermediateDirectories: true)
        let file = try FileReplacement(path: target, temporary: directory + "/d.tmp")
        let rename = #expect(throws: FileReplacement.Failure.self) { try file.commit() }
        #expect(rename?.step == .rename)
        #expect(!FileManager.default.fileExists(atPath: directory + "/d.tmp"))
    }

    @Test func writeAllReportsTheErrnoOfAWriteThatFails() {
        let readOnly = open("/dev/null", O_RDONLY)
        defer { close(readOnly) }
        #expect([UInt8](repeating: 1, count: 10).withUnsafeBytes { writeAll(to: readOnly, $0) } == EBADF)
    }
}
