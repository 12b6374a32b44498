import DistillTensor

#if canImport(Glibc)
    import Glibc
#endif

/// Reads one position of dense outputs as float32 log-values (logits or
/// log-probabilities), for the per-position analyses of distill/explain.
public enum Rows {
    public struct NotDense: Error {}

    /// Log-values of row `r` (= example·T + position): logits as stored,
    /// log-probabilities as stored, log p for probabilities (0 → −∞).
    public static func logValues(_ outputs: ModelOutputs, row r: Int) throws -> [Float] {
        guard case .dense(let values) = outputs.layout else { throw NotDense() }
        let v = outputs.vocab
        var out = [Float](repeating: 0, count: v)
        let base = values.storage.base
        switch values.dtype {
        case .float32:
            for i in 0..<v { out[i] = base.loadUnaligned(fromByteOffset: (r * v + i) * 4, as: Float.self) }
        case .float64:
            for i in 0..<v { out[i] = Float(base.loadUnaligned(fromByteOffset: (r * v + i) * 8, as: Double.self)) }
        case .float16:
            for i in 0..<v { out[i] = halfToFloat(base.loadUnaligned(fromByteOffset: (r * v + i) * 2, as: UInt16.self)) }
        case .bfloat16:
            for i in 0..<v {
                out[i] = Float(bitPattern: UInt32(base.loadUnaligned(fromByteOffset: (r * v + i) * 2, as: UInt16.self)) << 16)
            }
        default:
            throw NotDense()
        }
        if outputs.kind == .probs {
            let sum = out.reduce(0, +)
            for i in 0..<v { out[i] = out[i] > 0 ? logf(out[i] / sum) : -.infinity }
        }
        return out
    }

    /// Whether row `r` takes part (mask absent or non-zero).
    public static func isValid(_ outputs: ModelOutputs, row r: Int) -> Bool {
        guard let mask = outputs.mask else { return true }
        return mask.storage.base.load(fromByteOffset: r, as: UInt8.self) != 0
    }

    /// IEEE binary16 → binary32, subnormals and specials included.
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -magnitude : magnitude
        }
        if exponent == 31 {
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        return Float(bitPattern: sign | UInt32(exponent + 112) << 23 | mantissa << 13)
    }
}
