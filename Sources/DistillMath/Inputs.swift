import DistillTensor

/// A validated view of one side's `ModelOutputs`: shapes are checked once up
/// front, values row by row as they are read (a NaN deep in the tensor costs
/// nothing until it is met).
///
/// Masked positions are never read, so padding may hold anything.
struct SideView: Sendable {
    let side: LossError.Side
    let kind: OutputKind
    let examples: Int
    let positions: Int
    let vocab: Int
    /// V for dense, K for top-k.
    let rowLength: Int
    let values: Tensor
    let indices: Tensor?
    let mask: Tensor?
    var isTopK: Bool { indices != nil }

    init(_ o: ModelOutputs, side: LossError.Side) throws {
        self.side = side
        kind = o.kind
        examples = o.examples
        positions = o.positions
        vocab = o.vocab
        mask = o.mask
        guard o.examples >= 0, o.positions >= 0, o.vocab >= 1 else {
            throw LossError(
                side: side, parameter: .shape, message: "invalid sizes N=\(o.examples) T=\(o.positions) V=\(o.vocab); V must be ≥ 1")
        }
        switch o.layout {
        case .dense(let v):
            guard v.shape == [o.examples, o.positions, o.vocab] else {
                throw LossError(
                    side: side, parameter: .values,
                    message: "dense values have shape \(v.shape), expected [\(o.examples), \(o.positions), \(o.vocab)]")
            }
            values = v
            indices = nil
            rowLength = o.vocab
        case .topK(let idx, let v):
            guard v.rank == 3, v.shape[0] == o.examples, v.shape[1] == o.positions, v.shape[2] >= 1 else {
                throw LossError(
                    side: side, parameter: .values,
                    message: "top-k values have shape \(v.shape), expected [\(o.examples), \(o.positions), K] with K ≥ 1")
            }
            guard idx.shape == v.shape else {
                throw LossError(
                    side: side, parameter: .indices, message: "top-k indices have shape \(idx.shape) but values have shape \(v.shape)")
            }
            guard idx.dtype == .int32 || idx.dtype == .int64 else {
                throw LossError(side: side, parameter: .indices, message: "top-k indices must be int32 or int64, got \(idx.dtype.rawValue)")
            }
            guard v.shape[2] <= o.vocab else {
                throw LossError(side: side, parameter: .values, message: "top-k K=\(v.shape[2]) exceeds vocab size \(o.vocab)")
            }
            values = v
            indices = idx
            rowLength = v.shape[2]
        }
        guard values.dtype.isFloatingPoint else {
            throw LossError(
                side: side, parameter: .values,
                message: "values must be float32, float16, bfloat16 or float64, got \(values.dtype.rawValue)")
        }
        if let m = mask {
            guard m.dtype == .uint8 || m.dtype == .bool else {
                throw LossError(side: side, parameter: .mask, message: "mask must be uint8 or bool, got \(m.dtype.rawValue)")
            }
            guard m.shape == [o.examples, o.positions] else {
                throw LossError(
                    side: side, parameter: .mask, message: "mask has shape \(m.shape), expected [\(o.examples), \(o.positions)]")
            }
        }
    }

    func isValid(row r: Int) -> Bool {
        guard let m = mask else { return true }
        return m.storage.base.load(fromByteOffset: r, as: UInt8.self) != 0
    }

    func error(_ parameter: LossError.Parameter = .values, row r: Int, vocabIndex: Int? = nil, _ message: String) -> LossError {
        LossError(
            side: side, parameter: parameter, example: positions > 0 ? r / positions : r,
            position: positions > 0 ? r % positions : 0, vocabIndex: vocabIndex, message: message)
    }

    /// The row's values as float32: a pointer straight into the tensor for
    /// float32 data, otherwise converted into `scratch` (≥ rowLength floats).
    @inline(__always)
    func floatRow(_ r: Int, scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        let n = rowLength
        let base = values.storage.base
        switch values.dtype {
        case .float32:
            return (base + r * n * 4).assumingMemoryBound(to: Float.self)
        case .float16:
            convertHalfRow(UnsafeRawPointer(base + r * n * 2), scratch, n)
        case .bfloat16:
            convertBFloat16Row(UnsafeRawPointer(base + r * n * 2), scratch, n)
        default:
            let src = base + r * n * 8
            for i in 0..<n { scratch[i] = Float(src.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
        }
        return UnsafePointer(scratch)
    }

    /// Where row `r`'s stored values start, and log2 of their width in bytes
    /// (dense sides; for the kernels' prefetch, see `RowPrefetch`).
    func rawRow(_ r: Int) -> (UnsafeRawPointer, Int) {
        let width = values.dtype.byteWidth
        let shift = width == 8 ? 3 : width == 2 ? 1 : 2
        return (UnsafeRawPointer(values.storage.base + r * rowLength * width), shift)
    }

    /// Row `r` as log-values (logits, log-probs or log of probs) in float32,
    /// validated per kind. `invTau` is only used for the log-prob sum check.
    func logValueRow(_ r: Int, scratch: UnsafeMutablePointer<Float>, renormalize: Bool) throws -> UnsafePointer<Float> {
        let n = rowLength
        let x = floatRow(r, scratch: scratch)
        guard kind == .probs else { return x }
        // Probabilities: validate, then store log p in place.
        let nan = firstIndex(x, n) { $0.isNaN }
        if let i = nan { throw error(row: r, vocabIndex: i, "value is NaN") }
        if let i = firstIndex(x, n, where: { $0 < 0 }) {
            throw error(row: r, vocabIndex: i, "probability is negative (\(x[i]))")
        }
        if let i = firstIndex(x, n, where: { $0 == .infinity }) {
            throw error(row: r, vocabIndex: i, "probability is infinite")
        }
        let s = plainSum(x, n)
        if !isTopK {
            if !renormalize && abs(s - 1) > LossConfig.probabilitySumTolerance {
                throw error(row: r, "probabilities sum to \(s), not 1 (tolerance 1e-3; set renormalize to accept)")
            }
        } else if !renormalize && s > 1 + LossConfig.probabilitySumTolerance {
            throw error(row: r, "top-k probabilities sum to \(s) > 1 (set renormalize to accept)")
        }
        if s <= 0 { throw error(row: r, "probabilities sum to 0") }
        var i = 0
        while i + KVec.scalarCount <= n {
            storeK(scratch, i, vlog(loadK(x, i)))
            i += KVec.scalarCount
        }
        while i < n { scratch[i] = Float(dlog(Double(x[i]))); i += 1 }
        return UnsafePointer(scratch)
    }

    /// Vocabulary index of top-k slot `k` of row `r`.
    @inline(__always)
    func index(row r: Int, slot k: Int) -> Int {
        let idx = indices!
        let o = r * rowLength + k
        if idx.dtype == .int32 { return Int(idx.storage.base.loadUnaligned(fromByteOffset: o * 4, as: Int32.self)) }
        return Int(idx.storage.base.loadUnaligned(fromByteOffset: o * 8, as: Int64.self))
    }
}

@inline(__always)
func firstIndex(_ x: UnsafePointer<Float>, _ n: Int, where pred: (Float) -> Bool) -> Int? {
    var i = 0
    while i < n {
        if pred(x[i]) { return i }
        i += 1
    }
    return nil
}

/// First index holding NaN or +inf, the values that make a softmax undefined.
func firstNonSoftmaxable(_ x: UnsafePointer<Float>, _ n: Int) -> (Int, String)? {
    for i in 0..<n {
        if x[i].isNaN { return (i, "value is NaN") }
        if x[i] == .infinity { return (i, "value is +inf") }
    }
    return nil
}

@inline(__always)
func convertHalfRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
    var i = 0
    while i + KVec.scalarCount <= n {
        let h = src.loadUnaligned(fromByteOffset: i * 2, as: KHVec.self)
        storeK(dst, i, halfToFloat(h))
        i += KVec.scalarCount
    }
    while i < n {
        var t = KHVec()
        t[0] = src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)
        dst[i] = halfToFloat(t)[0]
        i += 1
    }
}

/// IEEE binary16 → binary32 with integer ops only (no F16C needed on the
/// baseline target): normals rebias the exponent, subnormals are scaled
/// through a float multiply, inf/NaN keep an all-ones exponent.
@inline(__always)
func halfToFloat(_ h: KHVec) -> KVec {
    let w = KUVec(truncatingIfNeeded: h)
    let sign = (w & 0x8000) &<< 16
    let expo = w & 0x7C00
    let mant = w & 0x03FF
    // Normal numbers: shift into place and rebias 15 → 127.
    let normal = ((expo | mant) &<< 13) &+ 0x3800_0000
    var bits = normal
    let isInfNaN = expo .== 0x7C00
    bits = bits.replacing(with: (mant &<< 13) | 0x7F80_0000, where: isInfNaN)
    let isSub = expo .== 0
    // Subnormal/zero: mant · 2^-24 computed exactly in float.
    let subF = (unsafeBitCast(mant | 0x4B00_0000, to: KVec.self) - 8388608.0) * 5.9604644775390625e-8
    bits = bits.replacing(with: unsafeBitCast(subF, to: KUVec.self), where: isSub)
    return unsafeBitCast(bits | sign, to: KVec.self)
}

@inline(__always)
func convertBFloat16Row(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
    var i = 0
    while i + KVec.scalarCount <= n {
        let h = src.loadUnaligned(fromByteOffset: i * 2, as: KHVec.self)
        let w = KUVec(truncatingIfNeeded: h) &<< 16
        storeK(dst, i, unsafeBitCast(w, to: KVec.self))
        i += KVec.scalarCount
    }
    while i < n {
        let b = UInt32(src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) << 16
        dst[i] = Float(bitPattern: b)
        i += 1
    }
}
