import DistillMath
import DistillTensor
import DistillTestSupport
import Foundation
import Testing

func dense(_ values: [Float], n: Int, t: Int, v: Int, kind: OutputKind = .logits, mask: [UInt8]? = nil) -> ModelOutputs {
    let m = mask.map { bytes in bytes.withUnsafeBytes { try! Tensor(storage: TensorStorage(copying: $0), dtype: .uint8, shape: [n, t]) } }
    return ModelOutputs(
        kind: kind, layout: .dense(values: Tensor(float32: values, shape: [n, t, v])),
        examples: n, positions: t, vocab: v, mask: m)
}

func topK(_ idx: [Int64], _ values: [Float], n: Int, t: Int, k: Int, v: Int, kind: OutputKind = .probs) -> ModelOutputs {
    ModelOutputs(
        kind: kind, layout: .topK(indices: Tensor(int64: idx, shape: [n, t, k]), values: Tensor(float32: values, shape: [n, t, k])),
        examples: n, positions: t, vocab: v)
}

/// Float64 reference, written from the formulas (independent of the kernels).
enum Ref {
    static func softmax(_ x: [Double], tau: Double) -> [Double] {
        let m = x.max()!
        let e = x.map { $0 == -.infinity ? 0 : exp(($0 - m) / tau) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    static func dist(_ x: [Float], kind: OutputKind, tau: Double) -> [Double] {
        let d = x.map(Double.init)
        switch kind {
        case .logits, .logprobs: return softmax(d, tau: tau)
        case .probs:
            let s = d.reduce(0, +)
            return softmax(d.map { log($0 / s) }, tau: tau)
        }
    }

    static func kl(_ p: [Double], _ q: [Double]) -> Double {
        var s = 0.0
        for i in p.indices where p[i] > 0 { s += q[i] == 0 ? .infinity : p[i] * log(p[i] / q[i]) }
        return s
    }

    static func entropy(_ p: [Double]) -> Double { -p.reduce(0) { $1 > 0 ? $0 + $1 * log($1) : $0 } }

    /// H(p, q) = −Σ p_i log q_i, summed directly (not as H(p) + KL).
    static func crossEntropy(_ p: [Double], _ q: [Double]) -> Double {
        var s = 0.0
        for i in p.indices where p[i] > 0 { s -= q[i] == 0 ? -.infinity : p[i] * log(q[i]) }
        return s
    }

    static func loss(_ name: LossName, _ p: [Double], _ q: [Double], alpha: Double = 0.1, beta: Double = 0.5) -> Double {
        func mix(_ w: Double) -> [Double] { zip(p, q).map { w * $0 + (1 - w) * $1 } }
        switch name {
        case .forwardKL: return kl(p, q)
        case .reverseKL: return kl(q, p)
        case .jsd: return 0.5 * kl(p, mix(0.5)) + 0.5 * kl(q, mix(0.5))
        case .generalizedJSD:
            let m = mix(beta)
            return (beta == 0 ? 0 : beta * kl(p, m)) + (beta == 1 ? 0 : (1 - beta) * kl(q, m))
        case .skewKL: return kl(p, mix(alpha))
        case .skewReverseKL: return kl(q, zip(p, q).map { alpha * $1 + (1 - alpha) * $0 })
        case .tvd: return 0.5 * zip(p, q).reduce(0) { $0 + abs($1.0 - $1.1) }
        case .crossEntropy: return crossEntropy(p, q)
        case .probMSE: return zip(p, q).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / Double(p.count)
        default: fatalError("not a distribution loss")
        }
    }
}

func close(_ a: Double, _ b: Double, abs: Double = 1e-6, rel: Double = 1e-5) -> Bool {
    if a == b { return true }
    return Swift.abs(a - b) <= abs || Swift.abs(a - b) <= rel * Swift.abs(b)
}

func expectError(_ body: () throws -> Void) -> LossError? {
    do { try body() } catch let e as LossError { return e } catch { return nil }
    return nil
}
