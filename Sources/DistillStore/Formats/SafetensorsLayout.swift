import DistillJSON

/// The layout of a safetensors file to be written: each tensor's place, worked out before any of
/// its data exists, so that a writer can fill the tensors a part of their rows at a time (at
/// `offset(of:row:)`) and never hold them whole.
///
/// The header is the format's: an 8-byte little-endian length, then JSON giving each tensor's
/// `dtype`, `shape` and `data_offsets` relative to the data, and `__metadata__` (string to string);
/// padded with spaces so that the data starts 8-byte aligned. Tensors follow in the order given.
public struct SafetensorsLayout: Sendable {
    public struct Tensor: Sendable {
        public let name: String
        /// "F32", "I64", "U8", ...
        public let dtype: String
        public let shape: [Int]
        public let elementBytes: Int
        /// Offset of its first byte in the file.
        public let offset: Int

        public var byteCount: Int { shape.reduce(1, *) * elementBytes }
        /// Bytes of one row (the first dimension's unit).
        public var rowBytes: Int { shape.dropFirst().reduce(1, *) * elementBytes }
    }

    public let header: [UInt8]
    public let tensors: [Tensor]
    public let fileBytes: Int

    static let widths: [String: Int] = ["F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "U8": 1, "BOOL": 1]

    /// `tensors` as (name, dtype, shape); `metadata` goes in `__metadata__`.
    public init(tensors specs: [(name: String, dtype: String, shape: [Int])], metadata: [(String, String)]) {
        var entries: [(String, JSON)] = [("__metadata__", JSON.object(metadata.map { ($0.0, JSON($0.1)) }))]
        var start = 0
        var sized: [(String, String, [Int], Int, Int)] = []
        for spec in specs {
            let width = Self.widths[spec.dtype]!
            let bytes = spec.shape.reduce(1, *) * width
            entries.append(
                (
                    spec.name,
                    JSON.object([
                        ("dtype", JSON(spec.dtype)), ("shape", JSON.array(spec.shape.map { JSON($0) })),
                        ("data_offsets", JSON.array([JSON(start), JSON(start + bytes)])),
                    ])
                ))
            sized.append((spec.name, spec.dtype, spec.shape, width, start))
            start += bytes
        }
        var json = JSON.object(entries).serialized()
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var header: [UInt8] = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) }
        header += json
        self.header = header
        tensors = sized.map { Tensor(name: $0.0, dtype: $0.1, shape: $0.2, elementBytes: $0.3, offset: header.count + $0.4) }
        fileBytes = header.count + start
    }

    public func tensor(_ name: String) -> Tensor { tensors.first { $0.name == name }! }

    /// Where row `row` of tensor `name` starts in the file.
    public func offset(of name: String, row: Int) -> Int {
        let t = tensor(name)
        return t.offset + row * t.rowBytes
    }
}
