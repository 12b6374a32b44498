import DistillJSON
import DistillProtocol
import DistillTensor

/// Reads inline model outputs from a request:
///
///     {"probs" | "logits" | "logprobs": [N, V] or [N, T, V] (or [V]),
///      "mask": [N, T] of 0/1, or "lengths": [N]}
///     {"topk": {"indices": [N, T, K], "values": [N, T, K], "kind": "logprobs", "vocab": V}}
///
/// A 2-D array is examples × vocabulary (one position each); a 3-D array is
/// examples × positions × vocabulary.
enum OutputsDecoding {
    static let denseKeys = OutputKind.allCases.map(\.rawValue)

    static func outputs(_ field: Field) throws -> ModelOutputs {
        _ = try field.object()
        try field.rejectUnknownKeys(Set(denseKeys + ["topk", "mask", "lengths"]))
        let present = denseKeys.filter { field.child($0) != nil } + (field.child("topk") != nil ? ["topk"] : [])
        guard present.count == 1 else {
            throw field.fail(
                present.isEmpty
                    ? "needs one of probs, logits, logprobs or topk"
                    : "gives \(present.joined(separator: " and ")); give exactly one")
        }
        let outputs: ModelOutputs
        if let topk = field.child("topk") {
            outputs = try topK(topk)
        } else {
            let key = present[0]
            let values = try normalisedRank(ArrayDecoding.tensor(field.child(key)!), field.child(key)!)
            guard values.dtype.isFloatingPoint else {
                throw field.child(key)!.fail("must hold floating-point values, got \(values.dtype.rawValue)")
            }
            outputs = ModelOutputs(
                kind: OutputKind(rawValue: key)!, layout: .dense(values: values),
                examples: values.shape[0], positions: values.shape[1], vocab: values.shape[2])
        }
        let mask = try self.mask(field, examples: outputs.examples, positions: outputs.positions)
        guard outputs.vocab > 0 else { throw field.fail("has an empty vocabulary") }
        return ModelOutputs(
            kind: outputs.kind, layout: outputs.layout, examples: outputs.examples,
            positions: outputs.positions, vocab: outputs.vocab, mask: mask)
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

    static func topK(_ field: Field) throws -> ModelOutputs {
        _ = try field.object()
        try field.rejectUnknownKeys(["indices", "values", "kind", "vocab"])
        let kind = OutputKind(rawValue: try field.child("kind")?.oneOf(denseKeys) ?? "logprobs")!
        let vocab = try field.required("vocab").int(min: 1)
        let indicesField = try field.required("indices")
        let valuesField = try field.required("values")
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
        guard values.shape[2] <= vocab else {
            throw valuesField.fail("has k = \(values.shape[2]) entries per position, more than the vocabulary of \(vocab)")
        }
        return ModelOutputs(
            kind: kind, layout: .topK(indices: indices, values: values),
            examples: values.shape[0], positions: values.shape[1], vocab: vocab)
    }

    /// `mask` [N, T] (or [N] when T = 1) of 0/1, or `lengths` [N]: valid positions.
    static func mask(_ field: Field, examples: Int, positions: Int) throws -> Tensor? {
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
