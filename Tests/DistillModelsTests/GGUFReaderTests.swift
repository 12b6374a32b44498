import DistillStore
import Foundation
import Testing

@testable import DistillModels

/// The GGUF header: what is read, and how a file that lies is refused.
struct GGUFReaderTests {
    let dir = TempDir()

    func open(_ bytes: [UInt8]) throws -> GGUFFile {
        try GGUFFile(path: dir.write("f.gguf", bytes))
    }

    /// The refusal for `bytes`, which must be a `StoreError`.
    func refusal(_ bytes: [UInt8]) -> StoreError? {
        do {
            _ = try open(bytes)
            return nil
        } catch let e as StoreError {
            return e
        } catch {
            Issue.record("not a StoreError: \(error)")
            return nil
        }
    }

    var sample: GGUFBuilder {
        var b = GGUFBuilder()
        b.add("general.architecture", string: "llama")
        b.add("count", u32: 7)
        b.add("ratio", f32: 0.5)
        b.add("flag", bool: true)
        b.add("names", strings: ["a", "", "ü✓"])
        b.add(tensor: "m", shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        b.add(tensor: "v", shape: [3], values: [7, 8, 9])
        return b
    }

    @Test func readsTheHeaderMetadataAndTensorRecords() throws {
        let f = try open(sample.bytes)
        #expect(f.version == 3)
        #expect(f.keys == ["general.architecture", "count", "ratio", "flag", "names"])
        #expect(f.metadata["count"] == .uint32(7))
        #expect(f.metadata["ratio"]?.double == 0.5)
        #expect(f.metadata["flag"] == .bool(true))
        #expect(f.metadata["names"] == .array(.string(["a", "", "ü✓"])))
        #expect(f.alignment == 32)
        #expect(f.dataOffset % 32 == 0)
        #expect(f.tensors.map(\.name) == ["m", "v"])
        let m = try #require(f.tensor("m"))
        #expect(m.dimensions == [3, 2])
        #expect(m.shape == [2, 3])
        #expect(m.type == .f32 && m.byteCount == 24 && m.offset == 0)
        #expect(f.tensor("v")?.offset == 32)
        let w = try f.float32(m)
        #expect(Array(w.pointer) == [1, 2, 3, 4, 5, 6])
        #expect(w.residentBytes == 0, "aligned F32 data is borrowed from the mapping")
    }

    @Test func everyValueTypeAndNestedArrays() throws {
        var b = GGUFBuilder()
        typealias B = GGUFBuilder
        b.kvs = [
            ("u8", 0, [200]), ("i8", 1, [0x9C]), ("u16", 2, B.le(UInt16(60000))), ("i16", 3, B.le(Int16(-3))),
            ("u32", 4, B.le(UInt32.max)), ("i32", 5, B.le(Int32.min)), ("f32", 6, B.le(Float(1.5).bitPattern)),
            ("b", 7, [0]), ("s", 8, B.string("x")), ("u64", 10, B.le(UInt64.max)), ("i64", 11, B.le(Int64(-5))),
            ("f64", 12, B.le(Double(0.25).bitPattern)),
            (
                "nested", 9,
                B.le(UInt32(9)) + B.le(UInt64(2)) + B.le(UInt32(4)) + B.le(UInt64(1)) + B.le(UInt32(3))
                    + B.le(UInt32(8)) + B.le(UInt64(1)) + B.string("y")
            ),
        ]
        let f = try open(b.bytes)
        #expect(f.metadata["u8"] == .uint8(200))
        #expect(f.metadata["i8"] == .int8(-100))
        #expect(f.metadata["u16"] == .uint16(60000))
        #expect(f.metadata["i16"] == .int16(-3))
        #expect(f.metadata["u32"]?.int == Int(UInt32.max))
        #expect(f.metadata["i32"] == .int32(Int32.min))
        #expect(f.metadata["f32"] == .float32(1.5))
        #expect(f.metadata["b"] == .bool(false))
        #expect(f.metadata["s"]?.string == "x")
        #expect(f.metadata["u64"] == .uint64(UInt64.max))
        #expect(f.metadata["u64"]?.int == nil, "a uint64 past Int.max is not an Int")
        #expect(f.metadata["i64"]?.int == -5)
        #expect(f.metadata["f64"] == .float64(0.25))
        #expect(f.metadata["nested"] == .array(.arrays([.uint32([3]), .string(["y"])])))
    }

    @Test func aCustomAlignmentPlacesTheData() throws {
        var b = sample
        b.alignment = 64
        b.add("general.alignment", u32: 64)
        let f = try open(b.bytes)
        #expect(f.alignment == 64 && f.dataOffset % 64 == 0)
        #expect(f.tensor("v")?.offset == 64)
        #expect(Array(try f.float32(f.tensor("v")!).pointer) == [7, 8, 9])
    }

    @Test func everyPrefixOfAValidFileIsRefusedAsTruncated() throws {
        let bytes = sample.bytes
        for n in 0..<bytes.count {
            let e = refusal(Array(bytes[..<n]))
            #expect(e?.code == .truncated, "prefix of \(n) bytes: \(String(describing: e))")
        }
        #expect(refusal(bytes) == nil)
    }

    @Test func lyingCountsAreRefusedBeforeAllocating() {
        var b = sample
        b.tensorCount = 1 << 60
        var e = refusal(b.bytes)
        #expect(e?.code == .truncated)
        #expect(e?.message.contains("the tensor count at byte 8 is 1152921504606846976") == true)
        b = sample
        b.kvCount = UInt64.max
        e = refusal(b.bytes)
        #expect(e?.code == .truncated && e?.numbers["offset"] == 16)
        b = GGUFBuilder()
        b.kvs = [("k", 8, GGUFBuilder.le(UInt64(1) << 63) + [0, 0, 0, 0, 0, 0, 0, 0])]
        e = refusal(b.bytes)
        #expect(e?.message.contains("metadata 'k' at byte 37 claims 9223372036854775808 bytes") == true)
        b = GGUFBuilder()
        b.kvs = [("a", 9, GGUFBuilder.le(UInt32(6)) + GGUFBuilder.le(UInt64(1) << 61))]
        e = refusal(b.bytes)
        #expect(e?.code == .truncated && e?.message.contains("the length of metadata 'a'") == true)
    }

    @Test func malformedValuesAreNamed() {
        func check(_ edit: (inout GGUFBuilder) -> Void, _ code: StoreError.Code, _ words: String) {
            var b = GGUFBuilder()
            edit(&b)
            let e = refusal(b.bytes)
            #expect(e?.code == code, "\(words): \(String(describing: e))")
            #expect(e?.message.contains(words) == true, "\(words): \(e?.message ?? "accepted")")
        }
        check({ $0.version = 1 }, .malformedHeader, "version 1")
        check({ $0.version = UInt32(3).byteSwapped }, .malformedHeader, "big-endian")
        check({ $0.kvs = [("b", 7, [2])] }, .malformedHeader, "bool holding 2")
        check({ $0.kvs = [("x", 13, [0])] }, .malformedHeader, "value type 13")
        check({ $0.kvs = [("x", 8, GGUFBuilder.le(UInt64(2)) + [0xC3, 0x28])] }, .malformedHeader, "not valid UTF-8")
        check({ $0.kvs = [("x", 4, [0, 0, 0, 0]), ("x", 4, [0, 0, 0, 0])] }, .malformedHeader, "appears twice")
        let deep = (0..<20).flatMap { _ in GGUFBuilder.le(UInt32(9)) + GGUFBuilder.le(UInt64(1)) }
        check({ $0.kvs = [("d", 9, deep)] }, .malformedHeader, "nests arrays more than 8 deep")
        check({ $0.add("general.alignment", u32: 0) }, .malformedHeader, "power of two")
        check(
            { $0.tensors = [.init(name: "t", dims: [1, 1, 1, 1, 1], type: 0, data: [0, 0, 0, 0])] }, .malformedHeader,
            "5 dimensions")
        check(
            { $0.tensors = [.init(name: "t", dims: [16], type: 2, data: [UInt8](repeating: 0, count: 18))] }, .malformedHeader,
            "blocks of 32")
        check(
            { $0.tensors = [.init(name: "t", dims: [1 << 40, 1 << 40], type: 0, data: [])] }, .malformedHeader,
            "multiply past any file size")
        check(
            { $0.tensors = [.init(name: "t", dims: [32], type: 99, data: [UInt8](repeating: 0, count: 64))] }, .unsupportedDtype,
            "number 99")
        check({ $0.tensors = [.init(name: "t", dims: [32], type: 5, data: [UInt8](repeating: 0, count: 64))] }, .unsupportedDtype, "Q4_3")
        check(
            {
                $0.tensors = [
                    .init(name: "t", dims: [1], type: 0, data: [0, 0, 0, 0]), .init(name: "t", dims: [1], type: 0, data: [0, 0, 0, 0]),
                ]
            },
            .malformedHeader, "repeats the name of tensor #0")
        check(
            {
                $0.tensors = [
                    .init(name: "a", dims: [16], type: 0, data: [UInt8](repeating: 0, count: 64)),
                    .init(name: "b", dims: [4], type: 0, data: [UInt8](repeating: 0, count: 16), offset: 32),
                ]
            }, .badOffsets, "overlaps tensor 'a'")
        check(
            { $0.tensors = [.init(name: "a", dims: [4], type: 0, data: [UInt8](repeating: 0, count: 16), offset: 4)] }, .badOffsets,
            "not a multiple of the alignment 32")
        check(
            { $0.tensors = [.init(name: "a", dims: [4], type: 0, data: [], offset: 1 << 50)] }, .truncated, "past the end of the file")
    }

    @Test func aTypeWithoutConversionReadsButDoesNotConvert() throws {
        var b = GGUFBuilder()
        b.tensors = [.init(name: "k", dims: [256], type: GGMLType.q2_K.rawValue, data: [UInt8](repeating: 0, count: 84))]
        let f = try open(b.bytes)
        #expect(f.tensors.first?.type == .q2_K)
        #expect(throws: StoreError.self) { try f.float32(f.tensors[0]) }
    }
}
