import DistillStore

/// A GGUF file (the llama.cpp format, versions 2 and 3), memory-mapped and checked.
///
/// Layout, all little-endian: the magic `GGUF`, a uint32 version, a uint64 tensor count and a
/// uint64 metadata count; the metadata as (string key, uint32 type, value) triples; one
/// information record per tensor (string name, uint32 dimension count, uint64 dimensions with
/// the fastest-varying first, uint32 `ggml_type`, uint64 offset); padding to `general.alignment`
/// (32 when absent); then the tensor data, each tensor at its offset from the start of that
/// section.
///
/// Opening reads the whole header and refuses, with a `StoreError` naming the field and its byte
/// offset, anything that is not as described: a count or length that reaches past the end
/// (`.truncated`), a malformed value (`.malformedHeader`: bad magic or version, an unknown value
/// type, a bool that is not 0 or 1, invalid UTF-8, a duplicate key or tensor name, arrays
/// nested deeper than `maximumArrayDepth`, more than four dimensions, rows that are not whole
/// blocks), a tensor type number that llama.cpp does not define (`.unsupportedDtype`, with its
/// name when it once had one), and data ranges that are misaligned, outside the file or
/// overlapping (`.badOffsets`, `.truncated`). Nothing is allocated for a count before the bytes
/// it needs are known to be there.
public final class GGUFFile: MappedFileFormat, Sendable {
    public let path: String
    public let map: MappedFile
    public let version: UInt32
    /// Metadata keys in file order.
    public let keys: [String]
    public let metadata: [String: GGUFValue]
    /// Tensors in file order.
    public let tensors: [GGUFTensorInfo]
    /// `general.alignment`, or 32.
    public let alignment: Int
    /// Where the tensor data section starts in the file.
    public let dataOffset: Int
    private let index: [String: Int]

    /// Arrays of arrays deeper than this are refused: each level recurses, and a file of nested
    /// array headers could otherwise exhaust the stack.
    public static let maximumArrayDepth = 8

    public init(map: MappedFile) throws {
        let path = map.path
        self.path = path
        self.map = map
        guard map.size >= 4, let base = map.base else {
            throw ggufError(
                .truncated, path, numbers: ["size": map.size],
                "the file is \(map.size) bytes, too short for the GGUF magic: it is empty or truncated")
        }
        var c = GGUFCursor(base: base, size: map.size, path: path)
        let magic = try c.load(UInt32.self, "the magic")
        guard magic == 0x4655_4747 else {  // "GGUF" read little-endian
            let shown = (0..<4).map { base.load(fromByteOffset: $0, as: UInt8.self) }
            throw ggufError(
                .malformedHeader, path, numbers: ["offset": 0],
                "the file starts with the bytes \(shown), not the GGUF magic \"GGUF\"; it is not a GGUF file")
        }
        version = try c.load(UInt32.self, "the version")
        guard version == 2 || version == 3 else {
            if version.byteSwapped == 2 || version.byteSwapped == 3 {
                throw ggufError(
                    .malformedHeader, path, numbers: ["offset": 4, "version": Int(version.byteSwapped)],
                    "the file is a big-endian GGUF (version \(version.byteSwapped) byte-swapped); only little-endian files are read")
            }
            throw ggufError(
                .malformedHeader, path, numbers: ["offset": 4, "version": Int(version)],
                "GGUF version \(version) at byte 4 is not supported; versions 2 and 3 are")
        }
        let tensorCount = try c.load(UInt64.self, "the tensor count")
        let kvCount = try c.load(UInt64.self, "the metadata count")
        // A key/value pair takes at least 8 (key length) + 4 (type) + 1 (a one-byte value) bytes.
        try c.checkCount(kvCount, minimumBytes: 13, at: 16, "the metadata count")

        var keys: [String] = []
        var metadata: [String: GGUFValue] = [:]
        keys.reserveCapacity(Int(kvCount))
        for i in 0..<Int(kvCount) {
            let at = c.offset
            let key = try c.string("metadata key #\(i)")
            guard metadata[key] == nil else {
                throw ggufError(
                    .malformedHeader, path, numbers: ["offset": at], "metadata key '\(key)' at byte \(at) appears twice")
            }
            let typeAt = c.offset
            let type = try c.load(UInt32.self, "the type of metadata '\(key)'")
            metadata[key] = try Self.value(type: type, typeAt: typeAt, cursor: &c, field: "metadata '\(key)'", depth: 0)
            keys.append(key)
        }
        self.keys = keys
        self.metadata = metadata

        var alignment = 32
        if let a = metadata["general.alignment"] {
            guard case .uint32(let v) = a else {
                throw ggufError(
                    .malformedHeader, path, "general.alignment is \(a.typeName); the GGUF specification makes it uint32")
            }
            guard v > 0, v & (v - 1) == 0 else {
                throw ggufError(
                    .malformedHeader, path, numbers: ["alignment": Int(v)],
                    "general.alignment is \(v); it must be a power of two")
            }
            alignment = Int(v)
        }
        self.alignment = alignment

        // A tensor record takes at least 8 (name length) + 4 (dimension count) + 4 (type) + 8 (offset) bytes.
        try c.checkCount(tensorCount, minimumBytes: 24, at: 8, "the tensor count")
        var tensors: [GGUFTensorInfo] = []
        var index: [String: Int] = [:]
        tensors.reserveCapacity(Int(tensorCount))
        for i in 0..<Int(tensorCount) {
            let t = try Self.tensorInfo(number: i, cursor: &c)
            if let first = index[t.name] {
                throw ggufError(
                    .malformedHeader, path, tensor: t.name, numbers: ["offset": t.recordOffset],
                    "the tensor record at byte \(t.recordOffset) repeats the name of tensor #\(first)")
            }
            index[t.name] = i
            tensors.append(t)
        }
        self.tensors = tensors
        self.index = index

        // The data section starts at the next multiple of the alignment; a file without tensors may end before it.
        let headerEnd = c.offset
        let dataOffset = (headerEnd + alignment - 1) / alignment * alignment
        self.dataOffset = dataOffset
        let dataSize = map.size - dataOffset
        if !tensors.isEmpty && dataSize < 0 {
            throw ggufError(
                .truncated, path, numbers: ["offset": dataOffset, "size": map.size],
                "the tensor data should start at byte \(dataOffset) (the header ends at \(headerEnd), aligned to "
                    + "\(alignment)), but the file ends at byte \(map.size): it is truncated")
        }
        for t in tensors {
            guard t.offset % alignment == 0 else {
                throw ggufError(
                    .badOffsets, path, tensor: t.name, numbers: ["offset": t.offset, "alignment": alignment],
                    "its data offset \(t.offset) is not a multiple of the alignment \(alignment)")
            }
            guard t.byteCount <= dataSize - t.offset else {
                throw ggufError(
                    .truncated, path, tensor: t.name,
                    numbers: ["begin": dataOffset + t.offset, "end": dataOffset &+ t.offset &+ t.byteCount, "size": map.size],
                    "its \(t.byteCount) bytes of \(t.type.name) data at byte \(dataOffset + t.offset) run past the end "
                        + "of the file (\(map.size) bytes): the file is truncated or the offset is wrong")
            }
        }
        let placed = tensors.filter { $0.byteCount > 0 }.sorted { ($0.offset, $0.byteCount) < ($1.offset, $1.byteCount) }
        for (a, b) in zip(placed, placed.dropFirst()) where b.offset < a.offset + a.byteCount {
            throw ggufError(
                .badOffsets, path, tensor: b.name,
                numbers: ["begin": b.offset, "end": b.offset + b.byteCount, "otherBegin": a.offset, "otherEnd": a.offset + a.byteCount],
                "its data [\(b.offset), \(b.offset + b.byteCount)) overlaps tensor '\(a.name)' at "
                    + "[\(a.offset), \(a.offset + a.byteCount)) (offsets from the data section)")
        }
    }

    /// The tensor record named `name`, if any.
    public func tensor(_ name: String) -> GGUFTensorInfo? {
        index[name].map { tensors[$0] }
    }

    /// The bytes of `tensor`'s data, inside the map (valid while `map` lives).
    public func bytes(of tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: map.base! + dataOffset + tensor.offset, count: tensor.byteCount)
    }

    // MARK: - Parsing

    private static func value(
        type: UInt32, typeAt: Int, cursor c: inout GGUFCursor, field: @autoclosure () -> String, depth: Int
    ) throws -> GGUFValue {
        switch type {
        case 0: return .uint8(try c.load(UInt8.self, field()))
        case 1: return .int8(try c.load(Int8.self, field()))
        case 2: return .uint16(try c.load(UInt16.self, field()))
        case 3: return .int16(try c.load(Int16.self, field()))
        case 4: return .uint32(try c.load(UInt32.self, field()))
        case 5: return .int32(try c.load(Int32.self, field()))
        case 6: return .float32(Float(bitPattern: try c.load(UInt32.self, field())))
        case 7:
            let at = c.offset
            return .bool(try bool(try c.load(UInt8.self, field()), at: at, path: c.path, field()))
        case 8: return .string(try c.string(field()))
        case 9: return .array(try array(cursor: &c, field: field(), depth: depth + 1))
        case 10: return .uint64(try c.load(UInt64.self, field()))
        case 11: return .int64(try c.load(Int64.self, field()))
        case 12: return .float64(Double(bitPattern: try c.load(UInt64.self, field())))
        default:
            throw ggufError(
                .malformedHeader, c.path, numbers: ["offset": typeAt, "type": Int(type)],
                "\(field()) has value type \(type) at byte \(typeAt); GGUF value types are 0 to 12")
        }
    }

    private static func bool(_ byte: UInt8, at: Int, path: String, _ field: @autoclosure () -> String) throws -> Bool {
        guard byte <= 1 else {
            throw ggufError(
                .malformedHeader, path, numbers: ["offset": at], "\(field()) at byte \(at) is a bool holding \(byte), not 0 or 1")
        }
        return byte == 1
    }

    /// An array: a uint32 element type, a uint64 count, then the elements.
    private static func array(cursor c: inout GGUFCursor, field: @autoclosure () -> String, depth: Int) throws -> GGUFArray {
        let typeAt = c.offset
        guard depth <= maximumArrayDepth else {
            throw ggufError(
                .malformedHeader, c.path, numbers: ["offset": typeAt],
                "\(field()) nests arrays more than \(maximumArrayDepth) deep at byte \(typeAt)")
        }
        let type = try c.load(UInt32.self, "the element type of \(field())")
        let countAt = c.offset
        let count = try c.load(UInt64.self, "the length of \(field())")
        let minimum: Int
        switch type {
        case 0, 1, 7: minimum = 1
        case 2, 3: minimum = 2
        case 4, 5, 6: minimum = 4
        case 8, 10, 11, 12: minimum = 8
        case 9: minimum = 12
        default:
            throw ggufError(
                .malformedHeader, c.path, numbers: ["offset": typeAt, "type": Int(type)],
                "\(field()) has element type \(type) at byte \(typeAt); GGUF value types are 0 to 12")
        }
        try c.checkCount(count, minimumBytes: minimum, at: countAt, "the length of \(field())")
        let n = Int(count)
        switch type {
        case 0: return .uint8(try scalars(UInt8.self, n, &c, field()))
        case 1: return .int8(try scalars(Int8.self, n, &c, field()))
        case 2: return .uint16(try scalars(UInt16.self, n, &c, field()))
        case 3: return .int16(try scalars(Int16.self, n, &c, field()))
        case 4: return .uint32(try scalars(UInt32.self, n, &c, field()))
        case 5: return .int32(try scalars(Int32.self, n, &c, field()))
        case 6: return .float32(try scalars(UInt32.self, n, &c, field()).map(Float.init(bitPattern:)))
        case 7:
            let at = c.offset
            let raw = try scalars(UInt8.self, n, &c, field())
            if let bad = raw.firstIndex(where: { $0 > 1 }) {
                throw ggufError(
                    .malformedHeader, c.path, numbers: ["offset": at + bad],
                    "\(field()) element \(bad) at byte \(at + bad) is a bool holding \(raw[bad]), not 0 or 1")
            }
            return .bool(raw.map { $0 == 1 })
        case 8:
            var strings: [String] = []
            strings.reserveCapacity(n)
            for i in 0..<n { strings.append(try c.string("\(field()) element \(i)")) }
            return .string(strings)
        case 10: return .uint64(try scalars(UInt64.self, n, &c, field()))
        case 11: return .int64(try scalars(Int64.self, n, &c, field()))
        case 12: return .float64(try scalars(UInt64.self, n, &c, field()).map(Double.init(bitPattern:)))
        default:
            var arrays: [GGUFArray] = []
            arrays.reserveCapacity(n)
            for i in 0..<n { arrays.append(try array(cursor: &c, field: "\(field()) element \(i)", depth: depth + 1)) }
            return .arrays(arrays)
        }
    }

    private static func scalars<T: FixedWidthInteger>(
        _: T.Type, _ n: Int, _ c: inout GGUFCursor, _ field: @autoclosure () -> String
    ) throws -> [T] {
        let p = try c.take(n * MemoryLayout<T>.size, field())
        return [T](unsafeUninitializedCapacity: n) { out, initialized in
            for i in 0..<n { out[i] = T(littleEndian: p.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self)) }
            initialized = n
        }
    }

    private static func tensorInfo(number i: Int, cursor c: inout GGUFCursor) throws -> GGUFTensorInfo {
        let path = c.path
        let recordOffset = c.offset
        let name = try c.string("the name of tensor #\(i)")
        let dimsAt = c.offset
        let nDims = try c.load(UInt32.self, "the dimension count of tensor '\(name)'")
        guard nDims <= 4 else {
            throw ggufError(
                .malformedHeader, path, tensor: name, numbers: ["offset": dimsAt, "dimensions": Int(nDims)],
                "it has \(nDims) dimensions (byte \(dimsAt)); GGUF tensors have at most 4")
        }
        var dims: [Int] = []
        var elements = 1
        for d in 0..<Int(nDims) {
            let at = c.offset
            let v = try c.load(UInt64.self, "dimension \(d) of tensor '\(name)'")
            guard v <= UInt64(Int.max) else {
                throw ggufError(
                    .malformedHeader, path, tensor: name, numbers: ["offset": at],
                    "dimension \(d) is \(v) (byte \(at)), larger than any file")
            }
            let (product, overflow) = elements.multipliedReportingOverflow(by: Int(v))
            guard !overflow else {
                throw ggufError(
                    .malformedHeader, path, tensor: name, numbers: ["offset": at],
                    "its dimensions \(dims + [Int(v)]) (byte \(at)) multiply past any file size")
            }
            elements = product
            dims.append(Int(v))
        }
        let typeAt = c.offset
        let rawType = try c.load(UInt32.self, "the type of tensor '\(name)'")
        guard let type = GGMLType(rawValue: rawType) else {
            let known = removedTypeNames[rawType].map { " (\($0), a type llama.cpp has removed)" } ?? ""
            throw ggufError(
                .unsupportedDtype, path, tensor: name, numbers: ["offset": typeAt, "type": Int(rawType)],
                "its tensor type number \(rawType)\(known) at byte \(typeAt) is not a type this reader knows; "
                    + "distilld converts \(GGMLType.convertibleNames)")
        }
        let (blockSize, typeSize) = type.layout
        let rowLength = dims.first ?? 1
        guard rowLength % blockSize == 0 else {
            throw ggufError(
                .malformedHeader, path, tensor: name, numbers: ["offset": dimsAt, "rowLength": rowLength],
                "its rows of \(rowLength) elements are not a whole number of \(type.name) blocks of \(blockSize)")
        }
        let (byteCount, overflow) = (elements / blockSize).multipliedReportingOverflow(by: typeSize)
        guard !overflow else {
            throw ggufError(.malformedHeader, path, tensor: name, "its dimensions \(dims) are too large for any file")
        }
        let offsetAt = c.offset
        let offset = try c.load(UInt64.self, "the data offset of tensor '\(name)'")
        guard offset <= UInt64(c.size) else {
            throw ggufError(
                .truncated, path, tensor: name, numbers: ["offset": offsetAt, "dataOffset": Int(clamping: offset), "size": c.size],
                "its data offset \(offset) (byte \(offsetAt)) lies past the end of the file (\(c.size) bytes)")
        }
        return GGUFTensorInfo(
            name: name, dimensions: dims, type: type, offset: Int(offset), byteCount: byteCount, recordOffset: recordOffset)
    }

    /// Type numbers llama.cpp once used and has since removed, named in the refusal.
    static let removedTypeNames: [UInt32: String] = [
        4: "Q4_2", 5: "Q4_3", 31: "Q4_0_4_4", 32: "Q4_0_4_8", 33: "Q4_0_8_8", 36: "IQ4_NL_4_4", 37: "IQ4_NL_4_8",
        38: "IQ4_NL_8_8",
    ]
}

/// One tensor's record in a GGUF header.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// Dimensions as GGUF stores them: the fastest-varying (the row length) first.
    public let dimensions: [Int]
    public let type: GGMLType
    /// Offset of the data from the start of the data section.
    public let offset: Int
    public let byteCount: Int
    /// Where this record starts in the file, for messages.
    public let recordOffset: Int

    /// The shape in PyTorch's order (slowest-varying first): `dimensions` reversed.
    public var shape: [Int] { dimensions.reversed() }
    public var elementCount: Int { dimensions.reduce(1, *) }
    /// Elements per row (the first GGUF dimension).
    public var rowLength: Int { dimensions.first ?? 1 }
    public var rowCount: Int { rowLength == 0 ? 0 : elementCount / rowLength }
}

extension GGUFFile {
    /// `tensor` as float32 in its stored order (no renaming, no row reordering), with its shape in
    /// PyTorch's order: borrowed from the mapping when it is aligned F32, converted otherwise.
    /// Throws `.unsupportedDtype` naming the tensor and its type when the type has no conversion.
    public func float32(_ tensor: GGUFTensorInfo) throws -> WeightBuffer {
        guard tensor.type.stored != nil else {
            throw ggufError(
                .unsupportedDtype, path, tensor: tensor.name, numbers: ["type": Int(tensor.type.rawValue)],
                "its type \(tensor.type.name) (number \(tensor.type.rawValue)) cannot be converted; "
                    + "distilld converts \(GGMLType.convertibleNames)")
        }
        let source = bytes(of: tensor)
        if tensor.type == .f32, tensor.elementCount > 0, Int(bitPattern: source.baseAddress) % MemoryLayout<Float>.alignment == 0 {
            let floats = source.baseAddress!.assumingMemoryBound(to: Float.self)
            return WeightBuffer(borrowing: UnsafeBufferPointer(start: floats, count: tensor.elementCount), shape: tensor.shape, owner: map)
        }
        let storage = UnsafeMutableBufferPointer<Float>.allocate(capacity: tensor.elementCount)
        let buffer = WeightBuffer(adopting: storage, shape: tensor.shape)
        ConversionJob.runAll(ConversionJob.split(tensor, source: source, into: storage, permutedHeads: nil))
        try map.checkUnchanged()
        return buffer
    }
}
