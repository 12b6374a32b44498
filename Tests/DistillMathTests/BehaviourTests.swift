import DistillMath
import DistillSync
import DistillTensor
import DistillTestSupport
import Foundation
import Testing

@Suite struct PropertyTests {
    @Test func divergenceProperties() throws {
        for seed in 0..<6 as Range<UInt64> {
            let v = [5, 64, 333][Int(seed % 3)]
            let rows = 4
            let zt = makeLogits(rows: rows, v: v, scale: [0.3, 3, 12][Int(seed % 3)], seed: 100 + seed)
            let zs = perturb(zt, by: 2, seed: 200 + seed)
            let t = dense(zt, n: rows, t: 1, v: v), s = dense(zs, n: rows, t: 1, v: v)
            func run(_ n: LossName, _ a: ModelOutputs, _ b: ModelOutputs) throws -> LossResult {
                try LossScorer.score(teacher: a, student: b, config: LossConfig(name: n, temperature: 1.7, reduction: .none))
            }
            // Against the float64 reference: cross entropy summed directly as
            // −Σ p log q (the engine forms H(p) + KL), JSD and TVD from their
            // definitions (the engine clamps them to ln 2 and 1).
            let kl = try run(.forwardKL, t, s)
            var worst: [String: WorstError] = [:]
            for name in [LossName.forwardKL, .crossEntropy, .jsd, .tvd] {
                let res = name == .forwardKL ? kl : try run(name, t, s)
                for r in 0..<rows {
                    let p = Ref.dist(Array(zt[r * v..<(r + 1) * v]), kind: .logits, tau: 1.7)
                    let q = Ref.dist(Array(zs[r * v..<(r + 1) * v]), kind: .logits, tau: 1.7)
                    worst[name.rawValue, default: WorstError()].record(
                        res.perPosition[r], Ref.loss(name, p, q), at: "seed \(seed) row \(r)")
                }
            }
            report(worst, "seed \(seed)")
            for name in [LossName.forwardKL, .reverseKL] {
                let same = try run(name, t, t)
                for r in 0..<rows { #expect(same.perPosition[r] == 0, "\(name) identical → \(same.perPosition[r])") }
            }
            // The mixture losses sum p_i·(u_i − log m̃_i) with m̃ rebuilt from
            // the stored exponentials: identical inputs leave rounding noise
            // (about 1e-8), inside the 1e-6 accuracy bound. TVD and prob-MSE
            // subtract p − q lane by lane and give exactly 0.
            for name in [LossName.jsd, .skewKL] {
                let same = try run(name, t, t)
                for r in 0..<rows { #expect(same.perPosition[r] < 1e-6) }
            }
            for name in [LossName.tvd, .probMSE] {
                let same = try run(name, t, t)
                for r in 0..<rows { #expect(same.perPosition[r] == 0) }
            }
            #expect(kl.extras.top1Agreement <= rows)
        }
    }

    @Test func disjointSupportJSDIsLn2() throws {
        let zt: [Float] = [0, -.infinity, -.infinity, 0], zs: [Float] = [-.infinity, 0, 0, -.infinity]
        let res = try LossScorer.score(
            teacher: dense(zt, n: 1, t: 1, v: 4), student: dense(zs, n: 1, t: 1, v: 4),
            config: LossConfig(name: .jsd))
        #expect(abs(res.aggregate! - log(2.0)) < 1e-6)
        let tvd = try LossScorer.score(
            teacher: dense(zt, n: 1, t: 1, v: 4), student: dense(zs, n: 1, t: 1, v: 4),
            config: LossConfig(name: .tvd))
        #expect(abs(tvd.aggregate! - 1) < 1e-6)
    }

    @Test func generalizedJSDIsContinuousAtEnds() throws {
        let zt = makeLogits(rows: 1, v: 20, scale: 2, seed: 3), zs = perturb(zt, by: 1, seed: 4)
        for beta in [0.0, 1.0] {
            let r = try LossScorer.score(
                teacher: dense(zt, n: 1, t: 1, v: 20), student: dense(zs, n: 1, t: 1, v: 20),
                config: LossConfig(name: .generalizedJSD, beta: beta))
            #expect(r.aggregate! < 1e-7)
        }
        let nearZero = try LossScorer.score(
            teacher: dense(zt, n: 1, t: 1, v: 20), student: dense(zs, n: 1, t: 1, v: 20),
            config: LossConfig(name: .generalizedJSD, beta: 1e-4))
        #expect(nearZero.aggregate! < 1e-3)
    }

    /// τ²·KL(p^τ‖q^τ) → (1/2V)‖Δz − mean Δz‖² with relative error shrinking in τ.
    @Test func largeTemperatureLimit() throws {
        let v = 64
        let zt = makeLogits(rows: 1, v: v, scale: 2, seed: 8), zs = perturb(zt, by: 1, seed: 9)
        let limit = Explain.largeTemperatureLimit(teacherLogits: zt, studentLogits: zs)
        var last = Double.infinity
        for tau in [2.0, 8.0, 32.0, 128.0] {
            let r = try LossScorer.score(
                teacher: dense(zt, n: 1, t: 1, v: v), student: dense(zs, n: 1, t: 1, v: v),
                config: LossConfig(name: .forwardKL, temperature: tau, scaleBySquaredTemperature: true))
            let rel = abs(r.aggregate! - limit) / limit
            #expect(rel < last, "tau \(tau): rel \(rel) not below \(last)")
            last = rel
        }
        #expect(last < 0.02)
    }
}

@Suite struct ValidationTests {
    let v = 4
    func good(_ kind: OutputKind = .logits) -> ModelOutputs {
        dense(kind == .probs ? [0.1, 0.2, 0.3, 0.4, 0.25, 0.25, 0.25, 0.25] : [1, 2, 3, 4, 0, 0, 0, 0], n: 1, t: 2, v: 4, kind: kind)
    }
    func score(_ t: ModelOutputs?, _ s: ModelOutputs, _ c: LossConfig = LossConfig(name: .forwardKL)) throws {
        _ = try LossScorer.score(teacher: t, student: s, config: c)
    }

    @Test func nanIsLocated() {
        let bad = dense([1, 2, 3, 4, 0, 0, .nan, 0], n: 1, t: 2, v: 4)
        let e = expectError { try score(good(), bad) }
        #expect(e?.side == .student && e?.parameter == .values && e?.example == 0 && e?.position == 1 && e?.vocabIndex == 2)
        let e2 = expectError {
            try score(dense([0.1, 0.2, 0.3, 0.4, 0.25, 0.25, .nan, 0.25], n: 1, t: 2, v: 4, kind: .probs), good(.probs))
        }
        #expect(e2?.side == .teacher && e2?.vocabIndex == 2 && e2?.position == 1)
    }

    /// x86 arithmetic makes NaNs with the sign bit set (0·∞ gives 0xFFC00000),
    /// and the fused kernels' exponential maps those to 0 like −inf: the NaN
    /// must still be found, wherever in a long row it sits, for every loss.
    @Test(arguments: [LossName.forwardKL, .reverseKL, .jsd, .tvd, .crossEntropy])
    func negativeNaNIsLocated(name: LossName) {
        let v = 3000
        for side in 0..<2 {
            for at in [5, 1700, 2999] {
                var zt = makeLogits(rows: 2, v: v, scale: 2, seed: 21), zs = perturb(zt, by: 1, seed: 22)
                if side == 0 { zt[v + at] = Float(bitPattern: 0xFFC0_0000) } else { zs[v + at] = Float(bitPattern: 0xFFC0_0000) }
                let e = expectError {
                    _ = try LossScorer.score(
                        teacher: dense(zt, n: 1, t: 2, v: v), student: dense(zs, n: 1, t: 2, v: v),
                        config: LossConfig(name: name))
                }
                #expect(e?.side == (side == 0 ? .teacher : .student), "\(name) side \(side) at \(at)")
                #expect(e?.position == 1 && e?.vocabIndex == at, "\(name) side \(side) at \(at): \(String(describing: e))")
            }
        }
    }

    @Test func probabilityChecks() {
        let neg = dense([0.5, 0.6, -0.1, 0, 0.25, 0.25, 0.25, 0.25], n: 1, t: 2, v: 4, kind: .probs)
        let e = expectError { try score(neg, good(.probs)) }
        #expect(e?.parameter == .values && e?.vocabIndex == 2 && e?.message.contains("negative") == true)
        let off = dense([0.1, 0.2, 0.3, 0.4, 0.3, 0.3, 0.3, 0.3], n: 1, t: 2, v: 4, kind: .probs)
        let e2 = expectError { try score(good(.probs), off) }
        #expect(e2?.position == 1 && e2?.message.contains("1.2") == true)
        // renormalize accepts it and divides by the sum.
        #expect((try? score(good(.probs), off, LossConfig(name: .forwardKL, renormalize: true))) != nil)
        let lp = dense([-1, 0.5, -2, -3, -1.386294, -1.386294, -1.386294, -1.386294], n: 1, t: 2, v: 4, kind: .logprobs)
        let e3 = expectError { try score(lp, good()) }
        #expect(e3?.side == .teacher && e3?.vocabIndex == 1 && e3?.message.contains("> 0") == true)
    }

    @Test func shapeChecks() {
        let other = dense([Float](repeating: 0, count: 10), n: 1, t: 2, v: 5)
        let e = expectError { try score(good(), other) }
        #expect(e?.parameter == .vocab && e?.message.contains("4") == true && e?.message.contains("5") == true)
        let e2 = expectError { try score(good(), dense([Float](repeating: 0, count: 12), n: 1, t: 3, v: 4)) }
        #expect(e2?.parameter == .shape && e2?.message.contains("T=2") == true && e2?.message.contains("T=3") == true)
    }

    @Test func allNegInfRowAndInfiniteLogit() {
        let e = expectError { try score(dense([1, 2, 3, 4, -.infinity, -.infinity, -.infinity, -.infinity], n: 1, t: 2, v: 4), good()) }
        #expect(e?.side == .teacher && e?.position == 1 && e?.message.contains("−inf") == true)
        let e2 = expectError { try score(good(), dense([1, .infinity, 3, 4, 0, 0, 0, 0], n: 1, t: 2, v: 4)) }
        #expect(e2?.vocabIndex == 1 && e2?.position == 0)
    }

    @Test func topKIndexOutOfRange() {
        let t = topK([0, 9], [0.5, 0.3], n: 1, t: 1, k: 2, v: 4)
        let s = dense([1, 2, 3, 4], n: 1, t: 1, v: 4)
        let e = expectError { try score(t, s) }
        #expect(e?.parameter == .indices && e?.vocabIndex == 1 && e?.message.contains("9") == true)
        let dup = topK([1, 1], [0.5, 0.3], n: 1, t: 1, k: 2, v: 4)
        #expect(expectError { try score(dup, s) }?.parameter == .indices)
    }

    @Test func configChecks() {
        let cases: [(LossConfig, LossError.Parameter)] = [
            (LossConfig(name: .forwardKL, temperature: 0), .temperature),
            (LossConfig(name: .forwardKL, temperature: .nan), .temperature),
            (LossConfig(name: .forwardKL, teacherTemperature: 1, studentTemperature: -1), .studentTemperature),
            (LossConfig(name: .forwardKL, teacherTemperature: 1e5, studentTemperature: 1), .teacherTemperature),
            (LossConfig(name: .skewKL, alpha: 1.5), .alpha),
            (LossConfig(name: .generalizedJSD, beta: -0.1), .beta),
        ]
        for (c, parameter) in cases {
            let e = expectError { try c.validate() }
            #expect(e?.parameter == parameter && e?.side == .config)
        }
        #expect(LossName(parsing: "kl_forward") == nil)
        #expect(LossName(parsing: "hinton") == .combined)
        #expect(LossName.allCases.map(\.rawValue).contains("generalized_jsd"))
    }

    /// The defaults a loss's descriptor states reach its configuration.
    @Test func descriptorDefaults() {
        for name in LossName.allCases {
            let c = LossConfig(name: name)
            #expect(c.scaleBySquaredTemperature == (name == .combined), "\(name)")
            #expect(c.alpha == (name == .combined ? 0.5 : 0.1), "\(name)")
            #expect(name.needsTeacher == (name != .nll) && name.usesLabels == (name == .nll || name == .combined))
        }
        let mixtures = LossName.allCases.filter { $0.descriptor.mixture != nil }
        #expect(mixtures == [.jsd, .generalizedJSD, .skewKL, .skewReverseKL])
        #expect(LossName.allCases.filter { $0.descriptor.secondPass != .none } == mixtures + [.tvd, .probMSE])
    }

    @Test func labelChecks() {
        let s = dense([1, 2, 3, 4, 0, 0, 0, 0], n: 1, t: 2, v: 4)
        let e = expectError { try score(nil, s, LossConfig(name: .nll, labels: Tensor(int64: [1, 4], shape: [1, 2]))) }
        #expect(e?.parameter == .labels && e?.position == 1)
        #expect(expectError { try score(nil, s, LossConfig(name: .nll)) }?.parameter == .labels)
        #expect(expectError { try score(nil, s, LossConfig(name: .forwardKL)) }?.side == .teacher)
    }
}

@Suite struct ReductionTests {
    @Test func reductionsAndMasks() throws {
        let n = 3, t = 2, v = 5
        let zt = makeLogits(rows: n * t, v: v, scale: 2, seed: 51), zs = perturb(zt, by: 1, seed: 52)
        // Example 1 fully masked, example 2 half masked.
        let mask: [UInt8] = [1, 1, 0, 0, 1, 0]
        var per = [Double](repeating: 0, count: n * t)
        for r in 0..<(n * t) where mask[r] != 0 {
            per[r] = Ref.kl(
                Ref.dist(Array(zt[r * v..<(r + 1) * v]), kind: .logits, tau: 1),
                Ref.dist(Array(zs[r * v..<(r + 1) * v]), kind: .logits, tau: 1))
        }
        func run(_ red: Reduction) throws -> LossResult {
            try LossScorer.score(
                teacher: dense(zt, n: n, t: t, v: v, mask: mask), student: dense(zs, n: n, t: t, v: v),
                config: LossConfig(name: .forwardKL, reduction: red))
        }
        let none = try run(.none)
        for r in 0..<(n * t) { #expect(close(none.reduced[r], per[r])) }
        #expect(none.aggregate == nil && none.validPositions == 3)
        let ss = try run(.sequenceSum).reduced
        #expect(close(ss[0], per[0] + per[1]) && ss[1] == 0 && close(ss[2], per[4]))
        let sm = try run(.sequenceMean).reduced
        #expect(close(sm[0], (per[0] + per[1]) / 2) && sm[1] == 0 && close(sm[2], per[4]))
        let total = per.reduce(0, +)
        #expect(close(try run(.mean).aggregate!, total / 3))
        #expect(close(try run(.sum).aggregate!, total))
        #expect(close(try run(.batchmean).aggregate!, total / 3))
    }

    @Test func nothingValid() throws {
        let z = makeLogits(rows: 2, v: 3, scale: 1, seed: 1)
        let r = try LossScorer.score(
            teacher: dense(z, n: 1, t: 2, v: 3, mask: [0, 0]), student: dense(z, n: 1, t: 2, v: 3),
            config: LossConfig(name: .jsd, reduction: .mean))
        #expect(r.validPositions == 0 && r.aggregate == 0 && r.perSequenceMean == [0])
        #expect(!r.perPosition.contains { $0.isNaN })
    }
}

@Suite struct TopKTests {
    /// Teacher top-2 probs over V = 4 vs a dense student, both policies, by hand.
    @Test func teacherTopKDenseStudent() throws {
        let t = topK([2, 0], [0.6, 0.3], n: 1, t: 1, k: 2, v: 4)
        let q: [Double] = [0.1, 0.2, 0.5, 0.2]
        let s = dense(q.map { Float(log($0)) }, n: 1, t: 1, v: 4)
        let renorm = try LossScorer.score(teacher: t, student: s, config: LossConfig(name: .forwardKL, topKTailPolicy: .renormalize))
        // Outcomes {0, 2}: p = (1/3, 2/3), q = (0.1, 0.5)/0.6.
        let want = (1.0 / 3) * log((1.0 / 3) / (0.1 / 0.6)) + (2.0 / 3) * log((2.0 / 3) / (0.5 / 0.6))
        #expect(close(renorm.aggregate!, want))
        #expect(renorm.extras.tailPolicy == .renormalize)
        #expect(abs(renorm.extras.meanTeacherTailMass - 0.1) < 1e-6)
        #expect(renorm.extras.top1Agreement == 1)
        let bucket = try LossScorer.score(teacher: t, student: s, config: LossConfig(name: .forwardKL, topKTailPolicy: .tailBucket))
        // Outcomes {0, 2, tail}: p = (0.3, 0.6, 0.1), q = (0.1, 0.5, 0.4).
        let want2 = 0.3 * log(0.3 / 0.1) + 0.6 * log(0.6 / 0.5) + 0.1 * log(0.1 / 0.4)
        #expect(close(bucket.aggregate!, want2))
        #expect(abs(bucket.extras.meanStudentTailMass - 0.4) < 1e-6)
        #expect(abs(bucket.extras.maxTeacherTailMass - 0.1) < 1e-6)
    }

    @Test func bothTopK() throws {
        let t = topK([0, 1], [0.5, 0.4], n: 1, t: 1, k: 2, v: 10)
        let s = topK([1, 2], [0.5, 0.3], n: 1, t: 1, k: 2, v: 10)
        let bucket = try LossScorer.score(teacher: t, student: s, config: LossConfig(name: .tvd, topKTailPolicy: .tailBucket))
        // Outcomes {0,1,2,tail}: p = (.5,.4,0,.1), q = (0,.5,.3,.2).
        #expect(close(bucket.aggregate!, 0.5 * (0.5 + 0.1 + 0.3 + 0.1)))
        let renorm = try LossScorer.score(teacher: t, student: s, config: LossConfig(name: .reverseKL, topKTailPolicy: .renormalize))
        #expect(renorm.aggregate == .infinity)  // student mass on index 2 where the renormalised teacher has none
    }

    /// k = V: a top-k teacher's probabilities in float32 sum to 1 − ε, and that ε used to become a
    /// bucket outcome against a dense student's exact 0 outside, making the KL +∞.
    @Test func aTopKThatCoversTheVocabularyHasNoBucket() throws {
        let v = 7
        let z: [Double] = [1.5, -0.3, 0.7, 1.4, -1.9, 0.2, 3.0]
        let zs: [Double] = [1.0, 0.1, 0.9, 1.2, -1.0, 0.4, 2.2]
        let p = Ref.softmax(z, tau: 1)
        let order = (0..<v).sorted { p[$0] > p[$1] }
        let teacher = topK(order.map(Int64.init), order.map { Float(p[$0]) }, n: 1, t: 1, k: v, v: v)
        let student = dense(zs.map(Float.init), n: 1, t: 1, v: v)
        let sum = order.reduce(0.0) { $0 + Double(Float(p[$1])) }
        #expect(sum < 1)  // the case arises when the float32 values leave a tail: 1 − Σp > 0
        // The reference: KL of the float32 teacher renormalised over V against the dense student.
        let pt = order.map { Double(Float(p[$0])) / sum }
        let q = Ref.softmax(zs, tau: 1)
        let want = zip(order, pt).reduce(0.0) { $0 + $1.1 * log($1.1 / q[$1.0]) }
        for policy in [TopKTailPolicy.tailBucket, .renormalize] {
            let r = try LossScorer.score(teacher: teacher, student: student, config: LossConfig(name: .forwardKL, topKTailPolicy: policy))
            #expect(r.aggregate!.isFinite && close(r.aggregate!, want), "\(policy)")
            #expect(r.extras.meanTeacherTailMass < 1e-6 && r.extras.meanStudentTailMass < 1e-6)
        }
    }
}

@Suite struct RunControlTests {
    @Test func cancellationThrows() throws {
        let rows = 256, v = 64
        let z = makeLogits(rows: rows, v: v, scale: 1, seed: 1)
        let t = dense(z, n: rows, t: 1, v: v)
        let counter = Counter()
        #expect(throws: CancellationError.self) {
            _ = try LossScorer.score(
                teacher: t, student: t, config: LossConfig(name: .forwardKL),
                isCancelled: { counter.increment() > 3 })
        }
        let log = ProgressLog()
        _ = try LossScorer.score(teacher: t, student: t, config: LossConfig(name: .forwardKL), progress: { log.fractions.append($0) })
        #expect(log.fractions.count > 1 && log.fractions == log.fractions.sorted() && log.fractions.last == 1)
    }
}

/// Progress is serialised by the scorer's own lock, so a plain array can collect it
/// from several workers. A slow callback makes the other workers wait on that lock:
/// under ThreadSanitizer (`make sanitize`) the lock must be one the sanitizer sees.
@Suite struct ContendedProgressTests {
    @Test func slowProgressFromSeveralWorkers() throws {
        let rows = 512, v = 256  // 131072 values: enough for more than one worker
        let t = dense(makeLogits(rows: rows, v: v, scale: 1, seed: 3), n: rows, t: 1, v: v)
        let s = dense(makeLogits(rows: rows, v: v, scale: 1, seed: 4), n: rows, t: 1, v: v)
        let log = ProgressLog()
        let result = try LossScorer.score(
            teacher: t, student: s, config: LossConfig(name: .forwardKL),
            progress: { f in
                log.fractions.append(f)
                usleep(2000)
            })
        #expect(result.aggregate!.isFinite)
        #expect(log.fractions.count == 64 && log.fractions == log.fractions.sorted() && log.fractions.last == 1)
    }
}

/// Progress fractions as a run reports them. Unchecked on purpose: the scorer
/// promises to call `progress` serially, and a plain array appended to from its
/// workers lets ThreadSanitizer check that promise.
final class ProgressLog: @unchecked Sendable {
    var fractions: [Double] = []
}

final class Counter: Sendable {
    private let n = Mutex(0)
    func increment() -> Int {
        n.withLock {
            $0 += 1
            return $0
        }
    }
}

@Suite struct SequenceAndExplainTests {
    @Test func sequenceLevelSeed() throws {
        let teacher = [0.8, 0.15, 0.05]
        let s1 = try SequenceLevel.loss(teacher: teacher, student: [0.6, 0.3, 0.1])
        let s2 = try SequenceLevel.loss(teacher: teacher, student: [0.6, 0.1, 0.3])
        // By hand: CE1 = .8·ln(1/.6) + .15·ln(1/.3) + .05·ln(1/.1) = 0.4086605 + 0.1805959 + 0.1151293.
        #expect(abs(s1.crossEntropy - 0.7043857) < 1e-6)
        #expect(abs(s1.klOnSet - 0.0915162) < 1e-6)
        #expect(abs(s2.crossEntropy - 0.8142469) < 1e-6)
        #expect(abs(s2.klOnSet - 0.2013775) < 1e-6)
        #expect(abs(s1.teacherEntropyOnSet - 0.6128695) < 1e-6 && s1.teacherCoverage == 1)
        let partial = try SequenceLevel.loss(teacher: [0.4, 0.4], student: [0.5, 0.25], renormalize: true)
        #expect(abs(partial.teacherCoverage - 0.8) < 1e-12)
        #expect(abs(partial.klOnSet - (0.5 * log(0.5 / (2.0 / 3)) + 0.5 * log(0.5 / (1.0 / 3)))) < 1e-12)
    }

    @Test func seedKLExample() throws {
        let p: [Double] = [0.7, 0.2, 0.1]
        for (q, want) in [([0.6, 0.3, 0.1], 0.02681), ([0.8, 0.1, 0.1], 0.04516)] {
            let r = try LossScorer.score(
                teacher: dense(p.map(Float.init), n: 1, t: 1, v: 3, kind: .probs),
                student: dense(q.map(Float.init), n: 1, t: 1, v: 3, kind: .probs),
                config: LossConfig(name: .forwardKL))
            #expect(abs(r.aggregate! - want) < 5e-6)
            let b = Explain.breakdown(p: p, q: q)
            #expect(abs(b.kl - want) < 5e-6)
            #expect(abs(b.crossEntropy - Ref.crossEntropy(p, q)) < 1e-12 && abs(b.teacherEntropy - Ref.entropy(p)) < 1e-12)
        }
    }

    @Test func smallTemperatureArgmaxCost() {
        let zt: [Float] = [1, 3, 2, 0.5], zs: [Float] = [2.5, 1, 0, 0.2]
        let c = Explain.argmaxDisagreementCost(teacherLogits: zt, studentLogits: zs)
        #expect(c.teacherArgmax == 1 && c.studentArgmax == 0 && abs(c.cost - 1.5) < 1e-12)
        var last = Double.infinity
        for tau in [0.5, 0.1, 0.02] {
            let err = abs(tau * Explain.kl(teacherLogits: zt, studentLogits: zs, temperature: tau) - c.cost)
            #expect(err < last)
            last = err
        }
        #expect(last < 0.05)
    }

    @Test func gradientMatchesFiniteDifference() {
        let zt: [Float] = [0.3, -1, 2, 0.7], zs: [Float] = [1, 0.2, -0.5, 0.1]
        let tau = 2.0
        let g = Explain.gradient(teacherLogits: zt, studentLogits: zs, temperature: tau)
        for i in 0..<4 {
            var a = zs, b = zs
            a[i] += 1e-2; b[i] -= 1e-2
            let fd =
                tau * tau
                * (Explain.kl(teacherLogits: zt, studentLogits: a, temperature: tau)
                    - Explain.kl(teacherLogits: zt, studentLogits: b, temperature: tau)) / Double(a[i] - b[i])
            #expect(abs(fd - g[i]) < 1e-4)
        }
        let sweep = Explain.temperatureSweep(teacherLogits: zt, studentLogits: zs, temperatures: [1, 4])
        #expect(sweep.count == 2 && sweep[1].scaledKL > 0)
    }
}
