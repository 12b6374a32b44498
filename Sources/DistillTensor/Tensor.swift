/// The in-memory representation of model outputs shared by the numeric core,
/// the stores and the server. Nothing here performs I/O: storage is handed in
/// by whoever owns the bytes (a decoded request, a memory-mapped file).

/// The element type of a stored tensor. Raw values match safetensors dtype names
/// in lower case and the `dtype` field of the binary wire form.
public enum ScalarType: String, Sendable, CaseIterable {
    case float32, float16, bfloat16, float64, int32, int64, uint8, bool

    /// Size of one element in bytes.
    public var byteWidth: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16: return 2
        case .uint8, .bool: return 1
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .float32, .float16, .bfloat16, .float64: return true
        default: return false
        }
    }
}

/// Owns (or borrows, keeping its owner alive) a span of bytes.
///
/// - Important: storage is immutable once built, so it may be read from many
///   threads at once. An analysis holding a `TensorStorage` keeps a consistent
///   view even if the named teacher it came from is replaced meanwhile.
/// Unchecked for pointer, owner, `release`: all `let`s; bytes never written once shared, owner only kept alive, `release` run in deinit.
public final class TensorStorage: @unchecked Sendable {
    public let base: UnsafeRawPointer
    public let byteCount: Int
    private let release: (() -> Void)?
    /// Anything that must outlive this storage (a mapped file, a parent buffer).
    private let owner: AnyObject?

    /// What keeps this storage's bytes alive (a mapped file, a parent storage), if anything.
    public var keptAlive: AnyObject? { owner }

    /// Takes ownership: `release` runs once when the storage is freed.
    public init(base: UnsafeRawPointer, byteCount: Int, owner: AnyObject? = nil, release: (() -> Void)? = nil) {
        self.base = base
        self.byteCount = byteCount
        self.owner = owner
        self.release = release
    }

    /// Copies `bytes` into freshly allocated, 64-byte aligned memory.
    public convenience init(copying bytes: UnsafeRawBufferPointer) {
        let count = Swift.max(bytes.count, 1)
        let p = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 64)
        if let src = bytes.baseAddress, bytes.count > 0 { p.copyMemory(from: src, byteCount: bytes.count) }
        self.init(base: UnsafeRawPointer(p), byteCount: bytes.count, release: { p.deallocate() })
    }

    /// Allocates `byteCount` bytes and lets `fill` write them before the storage is shared.
    public convenience init(byteCount: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        let p = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(byteCount, 1), alignment: 64)
        do { try fill(UnsafeMutableRawBufferPointer(start: p, count: byteCount)) } catch {
            p.deallocate()
            throw error
        }
        self.init(base: UnsafeRawPointer(p), byteCount: byteCount, release: { p.deallocate() })
    }

    /// A view into part of another storage, keeping it alive.
    public convenience init(slice parent: TensorStorage, offset: Int, byteCount: Int) {
        precondition(offset >= 0 && byteCount >= 0 && offset + byteCount <= parent.byteCount)
        self.init(base: parent.base + offset, byteCount: byteCount, owner: parent)
    }

    deinit { release?() }
}

/// A dense, C-ordered (row-major), little-endian tensor.
///
/// - Important: Sendable because every member is: the bytes are an immutable
///   `TensorStorage`.
public struct Tensor: Sendable {
    public let storage: TensorStorage
    public let dtype: ScalarType
    public let shape: [Int]

    public enum ShapeError: Error, Equatable {
        /// The bytes provided do not match `shape` × `dtype` width.
        case byteCountMismatch(expected: Int, actual: Int)
        case negativeDimension
        /// shape × dtype width does not fit in an Int.
        case tooLarge
    }

    /// shape × `width` in bytes, or nil when a dimension is negative or the product overflows.
    public static func byteCount(shape: [Int], width: Int) -> Int? {
        var total = width
        for d in shape {
            guard d >= 0 else { return nil }
            let (m, overflow) = total.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            total = m
        }
        return total
    }

    /// The coordinates, one per dimension, of the element at row-major offset `flat` in an
    /// array of `shape`: for shape [N, T, K], flat = (n·T + t)·K + k gives [n, t, k]. A
    /// dimension of size 0 is taken as 1, so the result is defined for any offset.
    public static func coordinates(ofElement flat: Int, in shape: [Int]) -> [Int] {
        var rest = flat
        var out = [Int](repeating: 0, count: shape.count)
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            out[d] = rest % max(shape[d], 1)
            rest /= max(shape[d], 1)
        }
        return out
    }

    public init(storage: TensorStorage, dtype: ScalarType, shape: [Int]) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw ShapeError.negativeDimension }
        guard let expected = Tensor.byteCount(shape: shape, width: dtype.byteWidth) else { throw ShapeError.tooLarge }
        guard expected == storage.byteCount else {
            throw ShapeError.byteCountMismatch(expected: expected, actual: storage.byteCount)
        }
        self.storage = storage
        self.dtype = dtype
        self.shape = shape
    }

    /// Builds a float32 tensor from Swift values (tests, inline requests).
    public init(float32 values: [Float], shape: [Int]) { self.init(copying: values, dtype: .float32, shape: shape) }

    /// Builds an int64 tensor from Swift values (top-k indices, labels).
    public init(int64 values: [Int64], shape: [Int]) { self.init(copying: values, dtype: .int64, shape: shape) }

    /// Builds a uint8 tensor from Swift values (masks).
    public init(uint8 values: [UInt8], shape: [Int]) { self.init(copying: values, dtype: .uint8, shape: shape) }

    /// A copy of `values`, which are `dtype`'s Swift type.
    private init<Element>(copying values: [Element], dtype: ScalarType, shape: [Int]) {
        precondition(shape.reduce(1, *) == values.count, "shape does not match value count")
        storage = values.withUnsafeBytes { TensorStorage(copying: $0) }
        self.dtype = dtype
        self.shape = shape
    }

    public var elementCount: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }

    /// The rows `range` of the leading dimension, as a view that shares (and keeps alive) these
    /// bytes: no copy, so a range of a mapped file stays mapped.
    public func rows(_ range: Range<Int>) -> Tensor {
        precondition(rank >= 1 && range.lowerBound >= 0 && range.upperBound <= shape[0], "rows out of range")
        let rowBytes = shape.dropFirst().reduce(dtype.byteWidth, *)
        let slice = TensorStorage(slice: storage, offset: range.lowerBound * rowBytes, byteCount: range.count * rowBytes)
        return Tensor(viewing: slice, dtype: dtype, shape: [range.count] + shape.dropFirst())
    }

    /// A tensor over storage already known to hold shape × dtype width bytes.
    private init(viewing storage: TensorStorage, dtype: ScalarType, shape: [Int]) {
        self.storage = storage
        self.dtype = dtype
        self.shape = shape
    }
}

/// What the values of an output tensor mean.
public enum OutputKind: String, Sendable, CaseIterable {
    case logits, probs, logprobs
}

/// Model outputs for N examples × T positions over a vocabulary of V outputs.
///
/// Dense values have shape [N, T, V]; top-k values and indices have shape
/// [N, T, K] and the remaining probability mass is unknown. The mask, when
/// present, has shape [N, T] (uint8 or bool, non-zero = valid position).
public struct ModelOutputs: Sendable {
    public enum Layout: Sendable {
        case dense(values: Tensor)
        case topK(indices: Tensor, values: Tensor)
    }

    public let kind: OutputKind
    public let layout: Layout
    public let examples: Int
    public let positions: Int
    public let vocab: Int
    public let mask: Tensor?

    public init(kind: OutputKind, layout: Layout, examples: Int, positions: Int, vocab: Int, mask: Tensor? = nil) {
        self.kind = kind
        self.layout = layout
        self.examples = examples
        self.positions = positions
        self.vocab = vocab
        self.mask = mask
    }

    public var isTopK: Bool {
        if case .topK = layout { return true }
        return false
    }

    /// The examples `range` (rows of every tensor), as views of these outputs; nil when a tensor
    /// does not have the examples as its leading dimension (the engine's checks then name it).
    public func examples(_ range: Range<Int>) -> ModelOutputs? {
        let tensors: [Tensor]
        switch layout {
        case .dense(let v): tensors = [v] + (mask.map { [$0] } ?? [])
        case .topK(let i, let v): tensors = [i, v] + (mask.map { [$0] } ?? [])
        }
        guard range.lowerBound >= 0, range.upperBound <= examples, tensors.allSatisfy({ $0.rank >= 1 && $0.shape[0] == examples })
        else { return nil }
        let sliced: Layout
        switch layout {
        case .dense(let v): sliced = .dense(values: v.rows(range))
        case .topK(let i, let v): sliced = .topK(indices: i.rows(range), values: v.rows(range))
        }
        return ModelOutputs(
            kind: kind, layout: sliced, examples: range.count, positions: positions, vocab: vocab, mask: mask?.rows(range))
    }
}
