import DistillMath
import DistillTensor
import Foundation

/// What keeping only a dense teacher's top k costs the forward KL to a student, for each k and
/// each way of treating the rest: the two tail policies the loss engine offers (renormalise over
/// the known indices, or a tail bucket holding the rest), computed by the engine itself on a top-k
/// teacher made from the dense one; and plain truncation, Σ over the top k of p log(p/q) with the
/// rest dropped, as training code that slices the top k often computes it. Plain truncation is not
/// a divergence: at a position where the student puts more mass on the teacher's top k than the
/// teacher does, it is negative, and a training loop that clamps it at zero learns nothing there.
///
/// The top k is taken from the teacher's probabilities at temperature 1 (what an export keeps);
/// the losses are at `temperature`. Masses (the teacher's tail, the student's mass outside the
/// teacher's top k) are at temperature 1.
public enum TopKAudit {
    public struct PolicyResult: Sendable, Equatable {
        /// Mean over valid positions.
        public let kl: Double
        /// `kl` minus the dense forward KL.
        public let error: Double
        /// Positions where the per-position value is below zero.
        public let negativePositions: Int
    }

    public struct Level: Sendable, Equatable {
        public let k: Int
        public let tailMean: Double
        public let tailMax: Double
        public let studentOutsideMean: Double
        public let studentOutsideMax: Double
        public let renormalize: PolicyResult
        public let tailBucket: PolicyResult
        public let truncate: PolicyResult
    }

    public struct Report: Sendable, Equatable {
        /// The dense forward KL at the temperature, mean over valid positions.
        public let exact: Double
        public let positions: Int
        public let levels: [Level]
        /// Per policy, the smallest k whose |error| is at most the bound (nil: none of those given).
        public let smallestK: [(policy: String, k: Int?)]

        public static func == (a: Report, b: Report) -> Bool {
            a.exact == b.exact && a.positions == b.positions && a.levels == b.levels
                && a.smallestK.map(\.policy) == b.smallestK.map(\.policy) && a.smallestK.map(\.k) == b.smallestK.map(\.k)
        }
    }

    public static func run(
        teacher: ModelOutputs, student: ModelOutputs, ks: [Int], temperature: Double, bound: Double,
        isCancelled: @escaping @Sendable () -> Bool = { false }, progress: (Double) -> Void = { _ in }
    ) throws -> Report {
        let (n, t, v) = (teacher.examples, teacher.positions, teacher.vocab)
        let rows = n * t
        let dense = LossConfig(name: .forwardKL, temperature: temperature)
        let exact = try LossScorer.score(teacher: teacher, student: student, config: dense, isCancelled: isCancelled)
        // Per row: the teacher's log-probabilities at τ = 1 sorted by index of decreasing value, and both sides' rows.
        var teacherRaw: [[Float]] = []
        var studentRaw: [[Float]] = []
        var teacherLog: [[Double]] = []
        var studentLog: [[Double]] = []
        var order: [[Int]] = []
        var valid: [Bool] = []
        for r in 0..<rows {
            let ok = Rows.isValid(teacher, row: r) && Rows.isValid(student, row: r)
            valid.append(ok)
            teacherRaw.append(try Rows.logValues(teacher, row: r))
            studentRaw.append(try Rows.logValues(student, row: r))
            let p = Explain.logSoftmax(teacherRaw[r])
            teacherLog.append(p)
            studentLog.append(Explain.logSoftmax(studentRaw[r]))
            order.append(p.indices.sorted { p[$0] > p[$1] || (p[$0] == p[$1] && $0 < $1) })
        }
        let counted = valid.filter { $0 }.count
        var levels: [Level] = []
        for (step, requested) in ks.enumerated() {
            if isCancelled() { throw CancellationError() }
            let k = min(requested, v)
            var values = [Float](repeating: 0, count: rows * k)
            var indices = [Int64](repeating: 0, count: rows * k)
            var tails: [Double] = []
            var outside: [Double] = []
            var truncated: [Double] = []
            for r in 0..<rows {
                let top = Array(order[r].prefix(k))
                for (slot, i) in top.enumerated() {
                    values[r * k + slot] = Float(teacherLog[r][i])
                    indices[r * k + slot] = Int64(i)
                }
                guard valid[r] else { continue }
                tails.append(max(0, 1 - top.reduce(0) { $0 + exp(teacherLog[r][$1]) }))
                outside.append(max(0, 1 - top.reduce(0) { $0 + exp(studentLog[r][$1]) }))
                // Plain truncation at the temperature: the full softmaxes, summed over the top k only.
                let pt = Explain.logSoftmax(teacherRaw[r], temperature: temperature)
                let qt = Explain.logSoftmax(studentRaw[r], temperature: temperature)
                truncated.append(top.reduce(0) { $0 + (pt[$1] == -.infinity ? 0 : exp(pt[$1]) * (pt[$1] - qt[$1])) })
            }
            let topK = ModelOutputs(
                kind: .logprobs,
                layout: .topK(indices: Tensor(int64: indices, shape: [n, t, k]), values: Tensor(float32: values, shape: [n, t, k])),
                examples: n, positions: t, vocab: v, mask: teacher.mask)
            func policy(_ p: TopKTailPolicy) throws -> PolicyResult {
                // Keeping every index is no truncation: the error is 0 by definition. (The engine would
                // agree up to the float32 rounding of the top-k teacher's values.)
                if k == v {
                    return PolicyResult(kl: exact.aggregate ?? 0, error: 0, negativePositions: 0)
                }
                let config = LossConfig(name: .forwardKL, temperature: temperature, topKTailPolicy: p)
                let r = try LossScorer.score(teacher: topK, student: student, config: config, isCancelled: isCancelled)
                let negatives = zip(r.perPosition, r.valid).filter { $0.1 && $0.0 < 0 }.count
                return PolicyResult(kl: r.aggregate ?? 0, error: (r.aggregate ?? 0) - (exact.aggregate ?? 0), negativePositions: negatives)
            }
            let plain = truncated.isEmpty ? 0 : truncated.reduce(0, +) / Double(truncated.count)
            levels.append(
                Level(
                    k: k, tailMean: mean(tails), tailMax: tails.max() ?? 0, studentOutsideMean: mean(outside),
                    studentOutsideMax: outside.max() ?? 0, renormalize: try policy(.renormalize), tailBucket: try policy(.tailBucket),
                    truncate: PolicyResult(
                        kl: plain, error: plain - (exact.aggregate ?? 0), negativePositions: truncated.filter { $0 < 0 }.count)))
            progress(Double(step + 1) / Double(ks.count))
        }
        func smallest(_ pick: (Level) -> PolicyResult) -> Int? {
            levels.filter { abs(pick($0).error) <= bound }.map(\.k).min()
        }
        return Report(
            exact: exact.aggregate ?? 0, positions: counted, levels: levels,
            smallestK: [
                ("renormalize", smallest(\.renormalize)), ("tail_bucket", smallest(\.tailBucket)), ("truncate", smallest(\.truncate)),
            ])
    }

    static func mean(_ xs: [Double]) -> Double { xs.isEmpty ? 0 : xs.reduce(0, +) / Double(xs.count) }
}
