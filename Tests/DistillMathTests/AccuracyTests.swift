import DistillMath
import DistillTensor
import DistillTestSupport
import Foundation
import Testing

let distributionLosses: [LossName] = [
    .forwardKL, .reverseKL, .jsd, .generalizedJSD, .skewKL, .skewReverseKL, .tvd, .crossEntropy, .probMSE,
]

/// Random logits for `rows` rows of size v: scale 10 gives peaked, 0.1 flat
/// distributions; `negInf` masks a few vocabulary entries with −inf.
func makeLogits(rows: Int, v: Int, scale: Double, seed: UInt64, negInf: Bool = false) -> [Float] {
    var r = Rng(seed)
    var x = (0..<(rows * v)).map { _ in Float(r.normal() * scale) }
    if negInf && v > 2 {
        for row in 0..<rows {
            for _ in 0..<max(1, v / 10) { x[row * v + Int(r.next() % UInt64(v - 1)) + 1] = -.infinity }
        }
    }
    return x
}

/// Student = teacher + noise (realistic: close but not identical).
func perturb(_ x: [Float], by s: Double, seed: UInt64) -> [Float] {
    var r = Rng(seed)
    return x.map { $0 == -.infinity ? $0 : $0 + Float(r.normal() * s) }
}

/// Scores `losses` on random rows and records every value, and forward KL's
/// entropies, against the float64 reference in `worst` (keyed by loss).
func checkAgainstReference(
    v: Int, rows: Int, scale: Double, tau: Double, negInf: Bool, seed: UInt64,
    losses: [LossName] = distributionLosses, into worst: inout [String: WorstError]
) throws {
    let zt = makeLogits(rows: rows, v: v, scale: scale, seed: seed, negInf: negInf)
    let zs = perturb(zt, by: scale * 0.5 + 0.3, seed: seed + 1)
    let t = dense(zt, n: rows, t: 1, v: v), s = dense(zs, n: rows, t: 1, v: v)
    for name in losses {
        let cfg = LossConfig(name: name, temperature: tau, alpha: 0.2, beta: 0.3, reduction: .none)
        let res = try LossScorer.score(teacher: t, student: s, config: cfg)
        for row in 0..<rows {
            let p = Ref.dist(Array(zt[row * v..<(row + 1) * v]), kind: .logits, tau: tau)
            let q = Ref.dist(Array(zs[row * v..<(row + 1) * v]), kind: .logits, tau: tau)
            let at = "V=\(v) scale=\(scale) tau=\(tau) row=\(row)"
            worst[name.rawValue, default: WorstError()].record(
                res.perPosition[row], Ref.loss(name, p, q, alpha: 0.2, beta: 0.3), at: at)
            if name == .forwardKL {
                worst["H(p)", default: WorstError()].record(res.extras.teacherEntropy[row], Ref.entropy(p), at: at)
                worst["H(q)", default: WorstError()].record(res.extras.studentEntropy[row], Ref.entropy(q), at: at)
            }
        }
    }
}

@Suite struct AccuracyTests {
    @Test(arguments: [2, 3, 17, 100, 1000, 4099])
    func smallAndMediumVocab(v: Int) throws {
        let rows = v > 1000 ? 3 : 6
        var worst: [String: WorstError] = [:]
        for (scale, tau) in [(10.0, 1.0), (0.1, 1.0), (3.0, 2.0), (3.0, 0.5)] {
            try checkAgainstReference(v: v, rows: rows, scale: scale, tau: tau, negInf: false, seed: UInt64(v), into: &worst)
        }
        try checkAgainstReference(v: v, rows: rows, scale: 3, tau: 1.5, negInf: true, seed: UInt64(v) + 7, into: &worst)
        report(worst, "V=\(v)")
    }

    @Test func largeVocab32000() throws {
        var worst: [String: WorstError] = [:]
        try checkAgainstReference(v: 32000, rows: 1, scale: 3, tau: 2, negInf: false, seed: 5, into: &worst)
        try checkAgainstReference(
            v: 32000, rows: 1, scale: 0.05, tau: 1, negInf: true, seed: 6,
            losses: [.forwardKL, .jsd, .tvd], into: &worst)
        report(worst, "V=32000")
    }

    @Test func largeVocab256000() throws {
        var worst: [String: WorstError] = [:]
        try checkAgainstReference(
            v: 256_000, rows: 1, scale: 4, tau: 2, negInf: false, seed: 9,
            losses: [.forwardKL, .reverseKL, .jsd, .tvd], into: &worst)
        report(worst, "V=256000")
    }

    /// The same distributions given as logits, probs and log-probs agree.
    @Test func kindsAgree() throws {
        let v = 50, rows = 4
        let zt = makeLogits(rows: rows, v: v, scale: 2, seed: 11), zs = perturb(zt, by: 1, seed: 12)
        func probs(_ z: [Float]) -> [Float] {
            (0..<rows).flatMap { r in Ref.softmax(z[r * v..<(r + 1) * v].map(Double.init), tau: 1).map(Float.init) }
        }
        let pt = probs(zt), ps = probs(zs)
        for name in [LossName.forwardKL, .jsd, .tvd] {
            let cfg = LossConfig(name: name, temperature: 2, reduction: .none)
            let a = try LossScorer.score(teacher: dense(zt, n: rows, t: 1, v: v), student: dense(zs, n: rows, t: 1, v: v), config: cfg)
            let b = try LossScorer.score(
                teacher: dense(pt, n: rows, t: 1, v: v, kind: .probs),
                student: dense(ps.map { log($0) }, n: rows, t: 1, v: v, kind: .logprobs), config: cfg)
            for r in 0..<rows {
                #expect(abs(a.perPosition[r] - b.perPosition[r]) < 2e-5, "\(name) \(a.perPosition[r]) vs \(b.perPosition[r])")
            }
        }
    }

    @Test(arguments: [ScalarType.float16, .bfloat16])
    func halfPrecisionInputs(dtype: ScalarType) throws {
        let v = 77, rows = 3
        let zt = makeLogits(rows: rows, v: v, scale: 2, seed: 21), zs = perturb(zt, by: 1, seed: 22)
        func encode(_ x: [Float]) -> (Tensor, [Float]) {
            var bits: [UInt16] = []
            var back: [Float] = []
            for f in x {
                if dtype == .float16 {
                    let h = Float16(f)
                    bits.append(h.bitPattern); back.append(Float(h))
                } else {
                    let b = UInt16(truncatingIfNeeded: (f.bitPattern &+ 0x7FFF &+ ((f.bitPattern >> 16) & 1)) >> 16)
                    bits.append(b); back.append(Float(bitPattern: UInt32(b) << 16))
                }
            }
            let t = bits.withUnsafeBytes { try! Tensor(storage: TensorStorage(copying: $0), dtype: dtype, shape: [rows, 1, v]) }
            return (t, back)
        }
        let (tt, bt) = encode(zt), (ts, bs) = encode(zs)
        let teacher = ModelOutputs(kind: .logits, layout: .dense(values: tt), examples: rows, positions: 1, vocab: v)
        let student = ModelOutputs(kind: .logits, layout: .dense(values: ts), examples: rows, positions: 1, vocab: v)
        let res = try LossScorer.score(
            teacher: teacher, student: student, config: LossConfig(name: .forwardKL, temperature: 1.5, reduction: .none))
        var worst: [String: WorstError] = [:]
        for r in 0..<rows {
            let want = Ref.kl(
                Ref.dist(Array(bt[r * v..<(r + 1) * v]), kind: .logits, tau: 1.5),
                Ref.dist(Array(bs[r * v..<(r + 1) * v]), kind: .logits, tau: 1.5))
            worst["forward_kl", default: WorstError()].record(res.perPosition[r], want, at: "\(dtype) row \(r)")
        }
        report(worst, "\(dtype)")
    }

    /// Every finite half-precision value reaches the kernels exactly as the
    /// float it denotes (subnormals, signed zeros and the largest finite
    /// included): logit MSE against the same values given as float32 is
    /// exactly 0, as each term is (a/τ − b/τ)² with a = b only when the
    /// conversion is exact. τ = 1e-4 puts the half subnormals' squares well
    /// inside float's normal range; bfloat16 reaches float's limits, so τ = 1.
    @Test(arguments: [ScalarType.float16, .bfloat16])
    func everyFiniteHalfConvertsExactly(dtype: ScalarType) throws {
        var bits: [UInt16] = []
        var floats: [Float] = []
        for b in 0...UInt16.max {
            let f = dtype == .float16 ? Float(Float16(bitPattern: b)) : Float(bitPattern: UInt32(b) << 16)
            guard f.isFinite else { continue }
            bits.append(b)
            floats.append(f)
        }
        let v = bits.count
        let half = try bits.withUnsafeBytes { try Tensor(storage: TensorStorage(copying: $0), dtype: dtype, shape: [1, 1, v]) }
        let tau = dtype == .float16 ? 1e-4 : 1
        let res = try LossScorer.score(
            teacher: ModelOutputs(kind: .logits, layout: .dense(values: half), examples: 1, positions: 1, vocab: v),
            student: dense(floats, n: 1, t: 1, v: v), config: LossConfig(name: .logitMSE, temperature: tau))
        #expect(res.aggregate == 0, "\(dtype): \(v) values, logit MSE \(String(describing: res.aggregate))")
        // A value one step off is seen (the check can fail).
        var off = floats
        off[v / 3] = off[v / 3].nextUp
        let moved = try LossScorer.score(
            teacher: ModelOutputs(kind: .logits, layout: .dense(values: half), examples: 1, positions: 1, vocab: v),
            student: dense(off, n: 1, t: 1, v: v), config: LossConfig(name: .logitMSE, temperature: tau))
        #expect(moved.aggregate! > 0)
        // +inf converts to +inf, which no softmax accepts: it is reported where it is.
        let inf: [UInt16] = [0, dtype == .float16 ? 0x7C00 : 0x7F80, 0]
        let infTensor = try inf.withUnsafeBytes { try Tensor(storage: TensorStorage(copying: $0), dtype: dtype, shape: [1, 1, 3]) }
        let e = expectError {
            _ = try LossScorer.score(
                teacher: ModelOutputs(kind: .logits, layout: .dense(values: infTensor), examples: 1, positions: 1, vocab: 3),
                student: dense([0, 0, 0], n: 1, t: 1, v: 3), config: LossConfig(name: .forwardKL))
        }
        #expect(e?.side == .teacher && e?.vocabIndex == 1 && e?.message.contains("+inf") == true, "\(String(describing: e))")
    }

    @Test func nllAndCombined() throws {
        let v = 300, n = 2, t = 3
        let zt = makeLogits(rows: n * t, v: v, scale: 2, seed: 31), zs = perturb(zt, by: 1, seed: 32)
        let labels: [Int64] = [5, -100, 17, 299, 0, 42]
        let lt = Tensor(int64: labels, shape: [n, t])
        let nll = try LossScorer.score(
            teacher: nil, student: dense(zs, n: n, t: t, v: v),
            config: LossConfig(name: .nll, reduction: .none, labels: lt))
        let comb = try LossScorer.score(
            teacher: dense(zt, n: n, t: t, v: v), student: dense(zs, n: n, t: t, v: v),
            config: LossConfig(name: .combined, temperature: 2, alpha: 0.3, reduction: .mean, labels: lt))
        var sum = 0.0
        for r in 0..<(n * t) {
            let q1 = Ref.dist(Array(zs[r * v..<(r + 1) * v]), kind: .logits, tau: 1)
            guard labels[r] >= 0 else {
                #expect(nll.perPosition[r] == 0 && !nll.valid[r])
                continue
            }
            let ce = -log(q1[Int(labels[r])])
            #expect(close(nll.perPosition[r], ce))
            let p = Ref.dist(Array(zt[r * v..<(r + 1) * v]), kind: .logits, tau: 2)
            let q = Ref.dist(Array(zs[r * v..<(r + 1) * v]), kind: .logits, tau: 2)
            let want = 0.3 * ce + 0.7 * 4 * Ref.kl(p, q)
            #expect(close(comb.perPosition[r], want), "combined row \(r)")
            sum += want
        }
        #expect(comb.validPositions == 5)
        #expect(close(comb.aggregate!, sum / 5))
    }

    @Test func logitMSE() throws {
        let v = 33
        let zt = makeLogits(rows: 2, v: v, scale: 2, seed: 41), zs = perturb(zt, by: 1, seed: 42)
        let res = try LossScorer.score(
            teacher: dense(zt, n: 2, t: 1, v: v), student: dense(zs, n: 2, t: 1, v: v),
            config: LossConfig(name: .logitMSE, temperature: 2, reduction: .none))
        for r in 0..<2 {
            var s = 0.0
            for i in 0..<v { let d = (Double(zt[r * v + i]) - Double(zs[r * v + i])) / 2; s += d * d }
            #expect(close(res.perPosition[r], s / Double(v)))
        }
    }

    @Test func infiniteKLWhenStudentHasZeroMass() throws {
        let zt: [Float] = [1, 2, 3, 0], zs: [Float] = [1, 2, -.infinity, 0]
        let res = try LossScorer.score(
            teacher: dense(zt, n: 1, t: 1, v: 4), student: dense(zs, n: 1, t: 1, v: 4),
            config: LossConfig(name: .forwardKL))
        #expect(res.aggregate == .infinity)
        // Reverse KL is finite (student's zero is 0·log 0 = 0).
        let rev = try LossScorer.score(
            teacher: dense(zt, n: 1, t: 1, v: 4), student: dense(zs, n: 1, t: 1, v: 4),
            config: LossConfig(name: .reverseKL))
        #expect(rev.aggregate!.isFinite)
        let p = Ref.dist(zt, kind: .logits, tau: 1), q = Ref.dist(zs, kind: .logits, tau: 1)
        #expect(close(rev.aggregate!, Ref.kl(q, p)))
    }
}
