import DistillTensor
import Testing

@Suite struct ScalarTypeTests {
    @Test func byteWidthsAndKinds() {
        let widths: [ScalarType: Int] = [
            .float64: 8, .int64: 8, .float32: 4, .int32: 4, .float16: 2, .bfloat16: 2, .uint8: 1, .bool: 1,
        ]
        for t in ScalarType.allCases { #expect(t.byteWidth == widths[t], "\(t)") }
        #expect(ScalarType.allCases.filter(\.isFloatingPoint) == [.float32, .float16, .bfloat16, .float64])
        // Raw values are the safetensors names in lower case.
        #expect(ScalarType(rawValue: "bfloat16") == .bfloat16 && ScalarType(rawValue: "F32") == nil)
    }
}

@Suite struct TensorTests {
    @Test func shapeMustMatchBytes() throws {
        let storage = TensorStorage(copying: UnsafeRawBufferPointer(start: nil, count: 0))
        let empty = try Tensor(storage: storage, dtype: .float32, shape: [0, 3])
        #expect(empty.elementCount == 0 && empty.rank == 2)
        let bytes = [UInt8](repeating: 7, count: 24)
        let s = bytes.withUnsafeBytes { TensorStorage(copying: $0) }
        for (dtype, shape) in [(ScalarType.float32, [2, 3]), (.int64, [3]), (.float16, [3, 2, 2]), (.uint8, [24])] {
            let t = try Tensor(storage: s, dtype: dtype, shape: shape)
            #expect(t.elementCount * dtype.byteWidth == 24 && t.shape == shape)
        }
        #expect(throws: Tensor.ShapeError.byteCountMismatch(expected: 32, actual: 24)) {
            try Tensor(storage: s, dtype: .float64, shape: [4])
        }
        #expect(throws: Tensor.ShapeError.negativeDimension) { try Tensor(storage: s, dtype: .uint8, shape: [-24, -1]) }
    }

    /// A shape whose byte count does not fit in an Int (a corrupt header, a
    /// hostile request) is refused, not a trap on arithmetic overflow.
    @Test func hugeShapesAreRefused() {
        let s = [UInt8](repeating: 0, count: 8).withUnsafeBytes { TensorStorage(copying: $0) }
        for shape in [[Int.max, 2], [1 << 32, 1 << 32], [Int.max / 4 + 1]] {
            #expect(Tensor.byteCount(shape: shape, width: 4) == nil, "\(shape)")
            #expect(throws: Tensor.ShapeError.tooLarge, "\(shape)") { try Tensor(storage: s, dtype: .float32, shape: shape) }
        }
        #expect(Tensor.byteCount(shape: [Int.max / 4], width: 4) == (Int.max / 4) * 4)
        #expect(Tensor.byteCount(shape: [2, -1], width: 4) == nil)
        // A leading zero dimension makes the later extents empty, not an overflow.
        let empty = try? Tensor(
            storage: TensorStorage(copying: UnsafeRawBufferPointer(start: nil, count: 0)), dtype: .int64, shape: [0, Int.max])
        #expect(empty?.elementCount == 0)
    }

    @Test func valueInitialisersKeepValuesAndLayout() throws {
        let f = Tensor(float32: [1.5, -2, .infinity, 0], shape: [2, 2])
        #expect(f.dtype == .float32 && f.storage.byteCount == 16)
        #expect((0..<4).map { f.storage.base.load(fromByteOffset: $0 * 4, as: Float.self) } == [1.5, -2, .infinity, 0])
        let i = Tensor(int64: [Int64.min, -100, 7], shape: [3])
        #expect(i.dtype == .int64 && i.rank == 1)
        #expect((0..<3).map { i.storage.base.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self) } == [Int64.min, -100, 7])
    }
}

@Suite struct TensorStorageTests {
    /// Release handlers run exactly once, when the last user (a slice
    /// included) lets go.
    @Test func ownershipAndSlices() {
        final class Counter { var released = 0 }
        let counter = Counter()
        let p = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 16)
        for k in 0..<16 { p.storeBytes(of: UInt8(k), toByteOffset: k, as: UInt8.self) }
        var slice: TensorStorage?
        do {
            let parent = TensorStorage(base: UnsafeRawPointer(p), byteCount: 16) {
                counter.released += 1
                p.deallocate()
            }
            slice = TensorStorage(slice: parent, offset: 4, byteCount: 8)
        }
        #expect(counter.released == 0)
        #expect(slice?.byteCount == 8 && slice?.base.load(fromByteOffset: 0, as: UInt8.self) == 4)
        slice = nil
        #expect(counter.released == 1)
    }

    @Test func copyingAlignsAndFillWrites() throws {
        let bytes: [UInt8] = [1, 2, 3]
        let c = bytes.withUnsafeBytes { TensorStorage(copying: $0) }
        #expect(Int(bitPattern: c.base) % 64 == 0 && c.byteCount == 3)
        #expect((0..<3).map { c.base.load(fromByteOffset: $0, as: UInt8.self) } == bytes)
        let filled = TensorStorage(byteCount: 4) { $0.copyBytes(from: [9, 8, 7, 6]) }
        #expect(filled.base.load(fromByteOffset: 3, as: UInt8.self) == 6)
        struct Refused: Error {}
        #expect(throws: Refused.self) { _ = try TensorStorage(byteCount: 4) { _ in throw Refused() } }
    }
}

@Suite struct ModelOutputsTests {
    @Test func layouts() throws {
        let dense = ModelOutputs(
            kind: .logits, layout: .dense(values: Tensor(float32: [0, 1], shape: [1, 1, 2])), examples: 1, positions: 1, vocab: 2)
        #expect(!dense.isTopK && dense.mask == nil)
        let topK = ModelOutputs(
            kind: .probs,
            layout: .topK(indices: Tensor(int64: [3], shape: [1, 1, 1]), values: Tensor(float32: [0.5], shape: [1, 1, 1])),
            examples: 1, positions: 1, vocab: 10)
        #expect(topK.isTopK && topK.vocab == 10)
    }

    @Test func rowsAreViewsOfTheLeadingDimension() throws {
        let t = Tensor(float32: (0..<24).map(Float.init), shape: [4, 3, 2])
        let middle = t.rows(1..<3)
        #expect(middle.shape == [2, 3, 2])
        let values = (0..<12).map { middle.storage.base.load(fromByteOffset: $0 * 4, as: Float.self) }
        #expect(values == (6..<18).map(Float.init))
        #expect(middle.storage.keptAlive === t.storage)
        #expect(t.rows(4..<4).shape == [0, 3, 2])
    }

    @Test func outputsSliceEveryTensorOrRefuseInconsistentShapes() throws {
        let values = Tensor(float32: (0..<24).map(Float.init), shape: [4, 3, 2])
        let mask = Tensor(uint8: [1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1], shape: [4, 3])
        let o = ModelOutputs(kind: .logits, layout: .dense(values: values), examples: 4, positions: 3, vocab: 2, mask: mask)
        let s = try #require(o.examples(2..<4))
        #expect(s.examples == 2 && s.positions == 3 && s.vocab == 2)
        #expect(s.mask.map { m in (0..<6).map { m.storage.base.load(fromByteOffset: $0, as: UInt8.self) } } == [1, 1, 1, 0, 0, 1])
        #expect(o.examples(3..<5) == nil)
        // A mask with the wrong number of rows: no slice, so the engine's checks can name it.
        let wrong = ModelOutputs(
            kind: .logits, layout: .dense(values: values), examples: 4, positions: 3, vocab: 2,
            mask: Tensor(uint8: [1, 1, 1], shape: [1, 3]))
        #expect(wrong.examples(0..<2) == nil)
    }
}
