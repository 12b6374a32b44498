import DistillJSON
import DistillTensor
import Foundation
import Testing

@testable import DistillStore

/// Hand-made bad files: each is refused with a precise code, names what is wrong,
/// and leaves the registry unchanged.
struct CorruptTests {
    let dir = TempDir()
    let good: [UInt8] = safetensorsBytes([("logits", "F32", [2, 3], f32Bytes([1, 2, 3, 4, 5, 6]))])

    func teacherError(
        _ bytes: [UInt8], name: String = "bad.safetensors", _ options: TeacherOptions = TeacherOptions(),
        format: TeacherFormat? = .safetensors
    ) -> (StoreError?, String) {
        let path = dir.write(name, bytes)
        return (storeError { _ = try TeacherLoader.load(TeacherSource(path: path, format: format, options: options)) }, path)
    }

    @Test func goodFileLoads() throws {
        let path = dir.write("good.safetensors", good)
        let t = try TeacherLoader.load(TeacherSource(path: path))
        #expect(floats(values(t.outputs)) == [1, 2, 3, 4, 5, 6])
        #expect(values(t.outputs).shape == [2, 1, 3])
    }

    @Test func missingAndUnreadableFiles() {
        let e = storeError { _ = try TeacherLoader.load(TeacherSource(path: dir.file("nope.safetensors"))) }
        #expect(e?.code == .notFound)
        #expect(e?.file == dir.file("nope.safetensors"))
        #expect(e?.message.contains("nope.safetensors") == true)
        let d = storeError { _ = try TeacherLoader.load(TeacherSource(path: dir.path, format: .safetensors)) }
        #expect(d?.code == .unreadable)
    }

    @Test func truncatedFiles() {
        let (e1, p1) = teacherError(Array(good.prefix(5)))
        #expect(e1?.code == .truncated)
        #expect(e1?.file == p1)
        // Header length running past the end.
        var long = good
        long.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64(1_000_000).littleEndian) { Array($0) })
        let (e2, _) = teacherError(long)
        #expect(e2?.code == .truncated)
        #expect(e2?.numbers["headerLength"] == 1_000_000)
        // Data cut short: the offsets now run past the buffer.
        let (e3, _) = teacherError(Array(good.dropLast(4)))
        #expect(e3?.code == .badOffsets)
        #expect(e3?.tensor == "logits")
    }

    @Test func malformedHeaderJSON() {
        let (e, p) = teacherError(
            safetensorsBytes([("logits", "F32", [1], f32Bytes([1]))], headerOverride: #"{"logits": {"dtype": "F32",,}"#))
        #expect(e?.code == .malformedHeader)
        #expect(e?.message.contains(p) == true)
        let (e2, _) = teacherError(safetensorsBytes([], headerOverride: #"{"logits": {"dtype": "F32", "shape": [1]}}"#))
        #expect(e2?.code == .malformedHeader)
        #expect(e2?.tensor == "logits")
    }

    @Test func offsetsOutOfRangeOverlappingOrWrongSize() {
        let a = f32Bytes([1, 2, 3, 4])
        let (e1, _) = teacherError(
            safetensorsBytes([("logits", "F32", [1, 4], a)], offsetsOverride: ["logits": (0, 64)]))
        #expect(e1?.code == .badOffsets)
        #expect(e1?.tensor == "logits")
        #expect(e1?.message.contains("outside") == true)
        let (e2, _) = teacherError(
            safetensorsBytes(
                [("logits", "F32", [1, 2], f32Bytes([1, 2])), ("mask", "U8", [1, 1], [1, 0, 0, 0, 0, 0, 0, 0])],
                offsetsOverride: ["mask": (4, 5)]))
        #expect(e2?.code == .badOffsets)
        #expect(e2?.message.contains("overlap") == true)
        let (e3, _) = teacherError(safetensorsBytes([("logits", "F32", [1, 3], a)]))
        #expect(e3?.code == .badOffsets)
        #expect(e3?.numbers["expected"] == 12)
        #expect(e3?.numbers["actual"] == 16)
    }

    @Test func unsupportedDtypeAndShape() {
        let (e1, _) = teacherError(safetensorsBytes([("logits", "F8_E4M3", [2, 2], [1, 2, 3, 4])]))
        #expect(e1?.code == .unsupportedDtype)
        #expect(e1?.tensor == "logits")
        #expect(e1?.message.contains("F8_E4M3") == true)
        let (e2, _) = teacherError(safetensorsBytes([("logits", "F32", [4], f32Bytes([1, 2, 3, 4]))]))
        #expect(e2?.code == .shapeMismatch)
        #expect(e2?.tensor == "logits")
        let (e3, _) = teacherError(safetensorsBytes([("logits", "I32", [1, 4], i32Bytes([1, 2, 3, 4]))]))
        #expect(e3?.code == .unsupportedDtype)
        let (e4, _) = teacherError(
            safetensorsBytes([
                ("logits", "F32", [2, 2], f32Bytes([1, 2, 3, 4])), ("mask", "U8", [3, 1], [1, 1, 1]),
            ]))
        #expect(e4?.code == .shapeMismatch)
        #expect(e4?.tensor == "mask")
        let (e5, _) = teacherError(safetensorsBytes([("logits", "X99", [1], [0])]))
        #expect(e5?.code == .unsupportedDtype)
    }

    @Test func nonFiniteValuesAreCountedAndRefused() throws {
        let vals: [Float] = [1, .nan, .infinity, -.infinity, .nan, 2, 3, 4]
        let bytes = safetensorsBytes([("logits", "F32", [2, 4], f32Bytes(vals))])
        let (e, path) = teacherError(bytes)
        #expect(e?.code == .nonFinite)
        #expect(e?.numbers["nan"] == 2)
        #expect(e?.numbers["posInf"] == 1)
        #expect(e?.numbers["negInf"] == 1)
        #expect(e?.tensor == "logits")
        let t = try TeacherLoader.load(TeacherSource(path: path, options: TeacherOptions(allowNonFinite: true)))
        #expect(t.nonFinite == NonFiniteCounts(nan: 2, posInf: 1, negInf: 1))
        #expect(t.warnings.contains { $0.contains("non-finite") })
        // −∞ alone is fine for logits, refused for probs.
        let neg = safetensorsBytes([("logits", "F32", [1, 2], f32Bytes([-.infinity, 0]))])
        let ok = try TeacherLoader.load(TeacherSource(path: dir.write("neg.safetensors", neg)))
        #expect(ok.nonFinite.negInf == 1)
        let (ep, _) = teacherError(safetensorsBytes([("probs", "F32", [1, 2], f32Bytes([-.infinity, 1]))]), name: "p.safetensors")
        #expect(ep?.code == .nonFinite)
    }

    @Test func nonFiniteInHalfTypes() {
        // f16: 0x7E00 NaN, 0x7C00 +inf, 0xFC00 -inf; bf16: 0x7FC0 NaN, 0x7F80 +inf.
        let f16: [UInt16] = [0x3C00, 0x7E00, 0x7C00, 0xFC00, 0x0000, 0x3C00, 0x3C00, 0x3C00, 0x7E01]
        let (e, _) = teacherError(safetensorsBytes([("logits", "F16", [1, 9], f16.withUnsafeBytes { Array($0) })]))
        #expect(e?.numbers["nan"] == 2)
        #expect(e?.numbers["posInf"] == 1)
        #expect(e?.numbers["negInf"] == 1)
        let bf: [UInt16] = [0x3F80, 0x7FC0, 0x7F80, 0xFF80, 0x3F80]
        let (e2, _) = teacherError(safetensorsBytes([("logits", "BF16", [1, 5], bf.withUnsafeBytes { Array($0) })]), name: "b.safetensors")
        #expect(e2?.numbers["nan"] == 1)
        #expect(e2?.numbers["posInf"] == 1)
        #expect(e2?.numbers["negInf"] == 1)
    }

    @Test func scannerCountsAcrossBlocksAndUnalignedStarts() {
        var vals = [Float](repeating: 0.5, count: 10_001)
        for i in stride(from: 3, to: 10_001, by: 997) { vals[i] = .nan }
        vals[10_000] = .infinity
        vals[2048] = -.infinity
        var c = NonFiniteCounts()
        vals.withUnsafeBytes { NonFiniteScanner.scan32($0.baseAddress! + 4, count: 10_000, into: &c) }
        #expect(c == NonFiniteCounts(nan: 11, posInf: 1, negInf: 1))
    }

    @Test func topKIndexOutOfRange() {
        let bytes = safetensorsBytes(
            [("topk_indices", "I64", [1, 2, 2], i64Bytes([0, 3, 1, 9])), ("topk_logits", "F32", [1, 2, 2], f32Bytes([1, 0, 1, 0]))],
            metadata: ["vocab_size": "5"])
        let (e, _) = teacherError(bytes)
        #expect(e?.code == .indexOutOfRange)
        #expect(e?.tensor == "topk_indices")
        #expect(e?.numbers["value"] == 9)
        #expect(e?.message.contains("[0][1][1]") == true)
        let noVocab = safetensorsBytes(
            [("topk_indices", "I64", [1, 2], i64Bytes([0, 3])), ("topk_logits", "F32", [1, 2], f32Bytes([1, 0]))])
        let (e2, _) = teacherError(noVocab, name: "nv.safetensors")
        #expect(e2?.message.contains("vocab") == true)
    }

    @Test func metadataIdsMustFitAndBeUnique() {
        let v = f32Bytes([1, 2, 3, 4])
        let (e1, _) = teacherError(safetensorsBytes([("logits", "F32", [2, 2], v)], metadata: ["ids": #"["a","a"]"#]))
        #expect(e1?.code == .duplicateId)
        let (e2, _) = teacherError(safetensorsBytes([("logits", "F32", [2, 2], v)], metadata: ["ids": #"["a"]"#]), name: "x.safetensors")
        #expect(e2?.code == .shapeMismatch)
    }

    @Test func jsonlTeacherLineErrors() {
        let p1 = dir.write("t1.jsonl", "{\"id\":\"a\",\"logits\":[1,2]}\n{\"id\":\"b\",\"logits\":[1,2\n")
        let e1 = storeError { _ = try TeacherLoader.load(TeacherSource(path: p1)) }
        #expect(e1?.code == .badLine)
        #expect(e1?.line == 2)
        #expect(e1?.message.contains("t1.jsonl:2") == true)
        let p2 = dir.write("t2.jsonl", "{\"id\":\"a\",\"logits\":[1,2]}\n\n{\"id\":\"b\",\"logit\":[1,2]}\n")
        let e2 = storeError { _ = try TeacherLoader.load(TeacherSource(path: p2)) }
        #expect(e2?.code == .badLine)
        #expect(e2?.line == 3)
        let p3 = dir.write("t3.jsonl", "{\"id\":\"a\",\"logits\":[1,2]}\n{\"id\":\"a\",\"logits\":[1,2]}\n")
        let e3 = storeError { _ = try TeacherLoader.load(TeacherSource(path: p3)) }
        #expect(e3?.code == .duplicateId)
        #expect(e3?.line == 2)
        #expect(e3?.numbers["firstLine"] == 1)
        let p4 = dir.write("t4.jsonl", "{\"logits\":[1,\"NaN\"]}\n")
        #expect(storeError { _ = try TeacherLoader.load(TeacherSource(path: p4)) }?.code == .nonFinite)
        let p5 = dir.write("t5.jsonl", "{\"logits\":[1,2]}\n{\"logits\":[1,2,3]}\n")
        let e5 = storeError { _ = try TeacherLoader.load(TeacherSource(path: p5)) }
        #expect(e5?.code == .shapeMismatch)
        #expect(e5?.line == 2)
    }

    @Test func npyCorruptions() {
        // A version 1 header with a bad literal, a truncated body, an unknown version.
        func npy(_ header: String, body: [UInt8], major: UInt8 = 1) -> [UInt8] {
            var h = Array(header.utf8)
            while (10 + h.count + 1) % 64 != 0 { h.append(0x20) }
            h.append(0x0A)
            var out: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, major, 0]
            out += withUnsafeBytes(of: UInt16(h.count).littleEndian) { Array($0) }
            return out + h + body
        }
        let ok = dir.write("ok.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }", body: f32Bytes([1, 2])))
        #expect((try? TeacherLoader.load(TeacherSource(path: ok))) != nil)
        let bad = dir.write("bad.npy", npy("{'descr': '<f4', 'fortran_order': Nope, 'shape': (1, 2), }", body: f32Bytes([1, 2])))
        #expect(storeError { _ = try TeacherLoader.load(TeacherSource(path: bad)) }?.code == .malformedHeader)
        let short = dir.write("short.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", body: f32Bytes([1, 2])))
        #expect(storeError { _ = try TeacherLoader.load(TeacherSource(path: short)) }?.code == .truncated)
        let v9 = dir.write("v9.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }", body: f32Bytes([1, 2]), major: 9))
        #expect(storeError { _ = try TeacherLoader.load(TeacherSource(path: v9)) }?.code == .malformedHeader)
        let c8 = dir.write("c8.npy", npy("{'descr': '<c8', 'fortran_order': False, 'shape': (1, 1), }", body: [0, 0, 0, 0, 0, 0, 0, 0]))
        #expect(storeError { _ = try TeacherLoader.load(TeacherSource(path: c8)) }?.code == .unsupportedDtype)
        let nan = dir.write("nan.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }", body: f32Bytes([1, .nan])))
        #expect(storeError { _ = try TeacherLoader.load(TeacherSource(path: nan)) }?.code == .nonFinite)
    }

    @Test func unknownFormat() {
        let p = dir.write("mystery.bin", "hello world, not a teacher")
        #expect(storeError { _ = try TeacherLoader.load(TeacherSource(path: p)) }?.code == .unknownFormat)
    }
}
