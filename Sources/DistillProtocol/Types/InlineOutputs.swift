import DistillJSON
import DistillTensor

/// Model outputs given inline in a request (`store.json#/$defs/outputs`):
///
///     {"probs" | "logits" | "logprobs": [N, V] or [N, T, V] (or [V]),
///      "mask": [N, T] of 0/1, or "lengths": [N]}
///     {"topk": {"indices": [N, T, K], "values": [N, T, K], "kind": "logprobs", "vocab": V}}
///
/// A 2-D array is examples × vocabulary (one position each); a 3-D array is
/// examples × positions × vocabulary. Each array is nested JSON or the binary form.
///
/// Reading the params checks the members (which are there, which are missing); the arrays stay
/// `Field`s, and `outputs()` turns them into tensors once, in the handler.
public struct InlineOutputs: Sendable {
    public static let denseKeys = OutputKind.allCases.map(\.rawValue)

    /// The outputs as a request member (`params.students.A`).
    public let field: Field
    /// The member holding the values: `probs`, `logits`, `logprobs` or `topk`.
    public let key: String
    /// The rank of the values as sent, so a complaint about one value can name its indices
    /// (`params.students.A.probs[0][2]`) however many of them the sender gave.
    public let rank: Int
    private let topK: TopK?

    /// The members of `{"topk": ...}`, checked when the params are read.
    private struct TopK: Sendable {
        let kind: OutputKind
        let vocab: Int
        let indices: Field
        let values: Field
    }

    public init(_ field: Field) throws {
        _ = try field.object()
        try field.rejectUnknownKeys(Set(Self.denseKeys + ["topk", "mask", "lengths"]))
        let present = Self.denseKeys.filter { field.child($0) != nil } + (field.child("topk") != nil ? ["topk"] : [])
        guard present.count == 1 else {
            throw field.fail(
                present.isEmpty
                    ? "needs one of probs, logits, logprobs or topk"
                    : "gives \(present.joined(separator: " and ")); give exactly one")
        }
        self.field = field
        key = present[0]
        if let topk = field.child("topk") {
            _ = try topk.object()
            try topk.rejectUnknownKeys(["indices", "values", "kind", "vocab"])
            let kind = OutputKind(rawValue: try topk.child("kind")?.oneOf(Self.denseKeys) ?? "logprobs")!
            let vocab = try topk.required("vocab").int(min: 1)
            let indices = try topk.required("indices")
            let values = try topk.required("values")
            topK = TopK(kind: kind, vocab: vocab, indices: indices, values: values)
            rank = Self.rank(of: values)
        } else {
            topK = nil
            rank = Self.rank(of: field.child(key)!)
        }
    }

    /// Whether the valid positions are given as `lengths` (a complaint about the mask names it).
    public var hasLengths: Bool { field.child("lengths") != nil }

    /// The tensors: every value is read here, once.
    public func outputs() throws -> ModelOutputs {
        let outputs: ModelOutputs
        if let topK {
            outputs = try Self.topK(topK)
        } else {
            let valuesField = field.child(key)!
            let values = try Self.normalisedRank(ArrayDecoding.tensor(valuesField), valuesField)
            guard values.dtype.isFloatingPoint else {
                throw valuesField.fail("must hold floating-point values, got \(values.dtype.rawValue)")
            }
            outputs = ModelOutputs(
                kind: OutputKind(rawValue: key)!, layout: .dense(values: values),
                examples: values.shape[0], positions: values.shape[1], vocab: values.shape[2])
        }
        let mask = try self.mask(examples: outputs.examples, positions: outputs.positions)
        guard outputs.vocab > 0 else { throw field.fail("has an empty vocabulary") }
        return ModelOutputs(
            kind: outputs.kind, layout: outputs.layout, examples: outputs.examples,
            positions: outputs.positions, vocab: outputs.vocab, mask: mask)
    }

    /// The rank of an inline array as sent (nested JSON or binary form).
    static func rank(of field: Field) -> Int {
        if let shape = field.child("shape")?.json { return shape.count }
        var depth = 0
        var node: JSON? = field.json
        while let n = node, n.isArray {
            depth += 1
            node = n[0]
        }
        return depth
    }

    /// [V] → [1, 1, V]; [N, V] → [N, 1, V]; [N, T, V] unchanged.
    static func normalisedRank(_ t: Tensor, _ field: Field) throws -> Tensor {
        let shape: [Int]
        switch t.rank {
        case 1: shape = [1, 1, t.shape[0]]
        case 2: shape = [t.shape[0], 1, t.shape[1]]
        case 3: shape = t.shape
        default: throw field.fail("must have 1 to 3 dimensions, got \(t.rank)")
        }
        return try Tensor(storage: t.storage, dtype: t.dtype, shape: shape)
    }

    private static func topK(_ topK: TopK) throws -> ModelOutputs {
        let indicesField = topK.indices
        let valuesField = topK.values
        let indices = try normalisedRank(ArrayDecoding.tensor(indicesField, integers: true), indicesField)
        let values = try normalisedRank(ArrayDecoding.tensor(valuesField), valuesField)
        guard indices.dtype == .int32 || indices.dtype == .int64 else {
            throw indicesField.fail("must hold integers, got \(indices.dtype.rawValue)")
        }
        guard indices.shape == values.shape else {
            throw ResponseError(
                code: .shapeMismatch,
                message: "\(valuesField.path) has shape \(values.shape) but \(indicesField.path) has \(indices.shape)",
                data: ["field": JSON(valuesField.path), "valuesShape": JSON.array(values.shape), "indicesShape": JSON.array(indices.shape)])
        }
        guard values.shape[2] <= topK.vocab else {
            throw valuesField.fail("has k = \(values.shape[2]) entries per position, more than the vocabulary of \(topK.vocab)")
        }
        return ModelOutputs(
            kind: topK.kind, layout: .topK(indices: indices, values: values),
            examples: values.shape[0], positions: values.shape[1], vocab: topK.vocab)
    }

    /// `mask` [N, T] (or [N] when T = 1) of 0/1, or `lengths` [N]: valid positions.
    private func mask(examples: Int, positions: Int) throws -> Tensor? {
        if let m = field.child("mask"), field.child("lengths") != nil {
            throw m.fail("give mask or lengths, not both")
        }
        if let m = field.child("mask") {
            let t = try ArrayDecoding.tensor(m, maxRank: 2, integers: true)
            let shape = t.rank == 1 && positions == 1 ? [t.shape[0], 1] : t.shape
            guard shape == [examples, positions] else {
                throw m.fail("has shape \(t.shape); expected [\(examples), \(positions)]")
            }
            var bytes = [UInt8](repeating: 0, count: examples * positions)
            for i in 0..<bytes.count {
                let v = t.int64(at: i)
                guard v == 0 || v == 1 else { throw m.fail("must hold 0 or 1, found \(v) at flat index \(i)") }
                bytes[i] = UInt8(v)
            }
            return try Tensor(storage: bytes.withUnsafeBytes { TensorStorage(copying: $0) }, dtype: .uint8, shape: [examples, positions])
        }
        if let l = field.child("lengths") {
            let t = try ArrayDecoding.tensor(l, maxRank: 1, integers: true)
            guard t.shape == [examples] else { throw l.fail("has \(t.shape[0]) entries; expected one per example (\(examples))") }
            var bytes = [UInt8](repeating: 0, count: examples * positions)
            for n in 0..<examples {
                let len = t.int64(at: n)
                guard len >= 0, len <= positions else {
                    throw ResponseError.invalidParams(field: l.path + "[\(n)]", "must be between 0 and \(positions), got \(len)")
                }
                for p in 0..<Int(len) { bytes[n * positions + p] = 1 }
            }
            return try Tensor(storage: bytes.withUnsafeBytes { TensorStorage(copying: $0) }, dtype: .uint8, shape: [examples, positions])
        }
        return nil
    }
}

extension Tensor {
    /// A float that holds an integer, else `Int64.min` (which every range check refuses):
    /// NaN or a huge value from a client must not trap the conversion.
    static func exactInteger(_ v: Double) -> Int64 {
        guard v.isFinite, v == v.rounded(), abs(v) < 9.0e15 else { return Int64.min }
        return Int64(v)
    }

    /// Element `i` of an integer tensor as Int64; a non-integral float reads as `Int64.min`.
    func int64(at i: Int) -> Int64 {
        switch dtype {
        case .int64: return storage.base.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)
        case .int32: return Int64(storage.base.loadUnaligned(fromByteOffset: i * 4, as: Int32.self))
        case .uint8, .bool: return Int64(storage.base.load(fromByteOffset: i, as: UInt8.self))
        case .float32: return Self.exactInteger(Double(storage.base.loadUnaligned(fromByteOffset: i * 4, as: Float.self)))
        case .float64: return Self.exactInteger(storage.base.loadUnaligned(fromByteOffset: i * 8, as: Double.self))
        default: return Int64.min
        }
    }
}
