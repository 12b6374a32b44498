import DistillJSON
import DistillTensor

/// A Hugging Face safetensors file, memory-mapped.
///
/// Layout: an 8-byte little-endian header length `n`, `n` bytes of JSON
/// ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}),
/// then the byte buffer that `data_offsets` index into.
///
/// Opening validates the whole header: the length fits the file, the JSON parses,
/// every entry is well formed, every dtype is a safetensors dtype, every
/// `[begin, end)` lies inside the buffer, matches shape × dtype width, and no
/// two tensors overlap. Tensors are handed out as views into the map (no copy)
/// unless misaligned for their dtype, in which case they are copied.
public final class SafetensorsFile: MappedFileFormat, Sendable {
    public struct Entry: Sendable {
        public let name: String
        /// The dtype as written ("F32", "BF16", "F8_E4M3", ...).
        public let dtypeName: String
        /// nil for safetensors dtypes that have no `ScalarType` (I8, U16, F8_*, ...).
        public let dtype: ScalarType?
        public let shape: [Int]
        /// Offsets relative to the start of the byte buffer.
        public let begin: Int
        public let end: Int
    }

    public let path: String
    public let map: MappedFile
    /// Absolute offset of the byte buffer in the file (8 + header length).
    public let dataOffset: Int
    public let entries: [String: Entry]
    public let metadata: [String: String]

    /// Element widths of every safetensors dtype.
    static let widths: [String: Int] = [
        "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "F4": 1,
        "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
        "I32": 4, "U32": 4, "F32": 4,
        "I64": 8, "U64": 8, "F64": 8, "C64": 8,
    ]

    static let scalarTypes: [String: ScalarType] = [
        "F32": .float32, "F16": .float16, "BF16": .bfloat16, "F64": .float64,
        "I32": .int32, "I64": .int64, "U8": .uint8, "BOOL": .bool,
    ]

    public init(map: MappedFile) throws {
        let path = map.path
        self.path = path
        self.map = map
        let size = map.size
        guard size >= 8, let base = map.base else {
            throw fileError(.truncated, path, numbers: ["size": size], "the file is \(size) bytes, shorter than the 8-byte header length")
        }
        let n = base.loadUnaligned(as: UInt64.self).littleEndian
        guard n <= UInt64(size - 8) else {
            throw fileError(
                .truncated, path, numbers: ["headerLength": Int(clamping: n), "size": size],
                "the header length \(n) runs past the end of the file (\(size) bytes): the file is truncated or not safetensors")
        }
        let headerLength = Int(n)
        guard headerLength >= 2 else {
            throw fileError(.malformedHeader, path, "the header length is \(headerLength); a header is at least '{}'")
        }
        dataOffset = 8 + headerLength
        let header = UnsafeRawBufferPointer(start: base + 8, count: headerLength)
        let json: JSON
        do {
            json = try JSON.parse(header)
        } catch let e as JSONParseError {
            throw fileError(
                .malformedHeader, path, numbers: ["position": e.position + 8],
                "the header is not valid JSON: \(e.message) (header byte \(e.position))")
        }
        guard let members = json.members else {
            throw fileError(.malformedHeader, path, "the header is \(json.kindDescription), not an object")
        }
        let bufferSize = size - dataOffset
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in members {
            if name == "__metadata__" {
                guard let pairs = value.members else {
                    throw fileError(.malformedHeader, path, "__metadata__ is \(value.kindDescription), not an object of strings")
                }
                for (k, v) in pairs {
                    guard let s = v.stringValue else {
                        throw fileError(.malformedHeader, path, "__metadata__ entry '\(k)' is \(v.kindDescription), not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            guard value.isObject else {
                throw fileError(.malformedHeader, path, tensor: name, "the header entry is \(value.kindDescription), not an object")
            }
            guard let dtypeName = value["dtype"]?.stringValue else {
                throw fileError(.malformedHeader, path, tensor: name, "the header entry lacks a string 'dtype'")
            }
            guard let shapeJSON = value["shape"]?.arrayValue else {
                throw fileError(.malformedHeader, path, tensor: name, "the header entry lacks an array 'shape'")
            }
            var shape: [Int] = []
            for d in shapeJSON {
                guard let v = d.intValue, v >= 0 else {
                    throw fileError(
                        .malformedHeader, path, tensor: name, "the shape holds \(d.serializedString()), not a non-negative integer")
                }
                shape.append(v)
            }
            guard let offsets = value["data_offsets"]?.arrayValue, offsets.count == 2,
                let begin = offsets[0].intValue, let end = offsets[1].intValue
            else {
                throw fileError(.malformedHeader, path, tensor: name, "the header entry lacks 'data_offsets' [begin, end] as two integers")
            }
            guard let width = Self.widths[dtypeName] else {
                throw fileError(.unsupportedDtype, path, tensor: name, "unknown dtype '\(dtypeName)'")
            }
            guard begin >= 0, begin <= end, end <= bufferSize else {
                throw fileError(
                    .badOffsets, path, tensor: name, numbers: ["begin": begin, "end": end, "bufferSize": bufferSize],
                    "data_offsets [\(begin), \(end)] lie outside the \(bufferSize)-byte buffer")
            }
            var expected = width
            for d in shape {
                let (m, overflow) = expected.multipliedReportingOverflow(by: d)
                guard !overflow else {
                    throw fileError(.badOffsets, path, tensor: name, "the shape \(shape) is too large")
                }
                expected = m
            }
            guard end - begin == expected else {
                throw fileError(
                    .badOffsets, path, tensor: name, numbers: ["expected": expected, "actual": end - begin],
                    "data_offsets [\(begin), \(end)] hold \(end - begin) bytes but shape \(shape) × \(dtypeName) needs \(expected)")
            }
            entries[name] = Entry(
                name: name, dtypeName: dtypeName, dtype: Self.scalarTypes[dtypeName], shape: shape, begin: begin, end: end)
        }
        let sorted = entries.values.filter { $0.end > $0.begin }.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
        if sorted.count > 1 {
            for i in 1..<sorted.count where sorted[i].begin < sorted[i - 1].end {
                let a = sorted[i - 1]
                let b = sorted[i]
                throw fileError(
                    .badOffsets, path, tensor: b.name, numbers: ["begin": b.begin, "end": b.end, "otherBegin": a.begin, "otherEnd": a.end],
                    "data_offsets [\(b.begin), \(b.end)] overlap tensor '\(a.name)' at [\(a.begin), \(a.end)]")
            }
        }
        self.entries = entries
        self.metadata = metadata
    }

    /// The tensor named `name` as stored: a view into the map, or an aligned copy
    /// when the data is not aligned to its element width (`copied` is then true).
    public func tensor(_ name: String) throws -> (tensor: Tensor, copied: Bool) {
        guard let e = entries[name] else {
            throw fileError(.malformedHeader, path, tensor: name, "no such tensor")
        }
        guard let dtype = e.dtype else {
            throw fileError(.unsupportedDtype, path, tensor: name, "dtype \(e.dtypeName) is not supported here")
        }
        let offset = dataOffset + e.begin
        let count = e.end - e.begin
        var storage = map.storage(offset: offset, count: count)
        var copied = false
        if Int(bitPattern: storage.base) % dtype.byteWidth != 0 {
            storage = TensorStorage(copying: UnsafeRawBufferPointer(start: storage.base, count: count))
            copied = true
        }
        return (try Tensor(storage: storage, dtype: dtype, shape: e.shape), copied)
    }
}
