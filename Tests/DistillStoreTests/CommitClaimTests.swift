import Foundation
import Testing

@testable import DistillStore

/// A load whose request was answered as cancelled while it read changes nothing
/// when it finishes: `commitIf` is asked under the lock, right before the swap.
struct CommitClaimTests {
    let dir = TempDir()

    @Test func aRefusedCommitLeavesTheRegistryAsItWas() throws {
        let r = Registry()
        let a = dir.write("a.safetensors", safetensorsBytes([("logits", "F32", [2, 2], f32Bytes([1, 2, 3, 4]))]))
        let b = dir.write("b.safetensors", safetensorsBytes([("logits", "F32", [2, 2], f32Bytes([5, 6, 7, 8]))]))
        let d = dir.write("d.jsonl", #"{"id":"x","full":"F","simplified":"S"}"# + "\n")
        #expect(throws: CancellationError.self) {
            try r.loadTeacher(name: "t", source: TeacherSource(path: a), commitIf: { false })
        }
        #expect(throws: CancellationError.self) {
            try r.loadDataset(name: "d", source: DatasetSource(path: d), commitIf: { false })
        }
        #expect(r.list().isEmpty)
        var asked = 0
        let old = try r.loadTeacher(
            name: "t", source: TeacherSource(path: a),
            commitIf: {
                asked += 1
                return true
            })
        #expect(asked == 1)
        #expect(throws: CancellationError.self) {
            try r.loadTeacher(name: "t", source: TeacherSource(path: b), replace: true, commitIf: { false })
        }
        #expect(try r.teacher("t") === old)
        #expect(r.list().map(\.name) == ["t"])
    }
}
