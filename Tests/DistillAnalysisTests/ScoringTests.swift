import DistillAnalysis
import DistillMath
import DistillTestSupport
import Synchronization
import Testing

/// distill/score's computation (`Scoring`) against a float64 reference: per-example losses,
/// the ranking value under each reduction, the spread, the worst examples, the ranking and
/// its margin, and other tools' conventions.
struct ScoringTests {
    /// One scoring problem: a teacher, students at different distances from it, a mask
    /// with a fully masked example, and the reference values of everything scored.
    struct Problem {
        let teacher: Logits
        let students: [(name: String, logits: Logits)]
        let ids: [String]
        let tau: Double
        let scaled: Bool
        let beta: Double

        init(seed: UInt64, beta: Double = 0.5) {
            var rng = Rng(seed)
            let n = Int.random(in: 3...7, using: &rng), t = Int.random(in: 1...4, using: &rng)
            let v = [2, 5, 17, 33][Int.random(in: 0..<4, using: &rng)]
            var teacher = Logits(n: n, t: t, v: v, scale: 2, rng: &rng)
            var mask = (0..<(n * t)).map { _ in UInt8(rng.uniform() < 0.85 ? 1 : 0) }
            let empty = Int.random(in: 0..<n, using: &rng)
            for p in 0..<t { mask[empty * t + p] = 0 }
            // The mask sits on the teacher for some problems and on a student for others:
            // either way a position takes part only where both sides are valid.
            let maskOnTeacher = rng.uniform() < 0.5
            if maskOnTeacher { teacher.mask = mask }
            // Noise levels far apart keep the students' losses far apart, so the ranking is clear.
            var students = [("near", 0.2), ("middle", 1.0), ("far", 3.0)].shuffled(using: &rng).map {
                (name: $0.0, logits: teacher.perturbed(by: $0.1, rng: &rng))
            }
            if !maskOnTeacher { students[0].logits.mask = mask }
            self.teacher = teacher
            self.students = students
            ids = (0..<n).map { "e\($0)" }
            tau = [0.5, 1, 2, 4][Int.random(in: 0..<4, using: &rng)]
            scaled = rng.uniform() < 0.5
            self.beta = beta
        }

        var n: Int { teacher.n }
        var t: Int { teacher.t }

        func valid(_ r: Int, student: Logits) -> Bool { teacher.isValid(r) && student.isValid(r) }

        /// KL(p^τ‖q^τ) per position (valid or not).
        func kl(_ student: Logits) -> [Double] {
            (0..<(n * t)).map {
                Reference.kl(
                    logP: Reference.logSoftmax(teacher.row($0), tau: tau), logQ: Reference.logSoftmax(student.row($0), tau: tau))
            }
        }
    }

    /// Everything `Scoring` reports about one student, from the float64 reference.
    struct Expected {
        let perPosition: [Double]
        let validPerExample: [Int]
        let perExample: [Double]
        let loss: Double
        /// How many positions' losses `loss` adds up, per unit: dividing by it makes `loss`
        /// a mean over positions, held to the engine's per-position tolerance.
        let positionsInLoss: Double

        init(_ problem: Problem, _ student: Logits, reduction: Reduction) {
            let factor = problem.scaled ? problem.tau * problem.tau : 1
            let values = problem.kl(student).map { $0 * factor }
            perPosition = values
            let (n, t) = (problem.n, problem.t)
            let rows = (0..<n).map { e in (0..<t).map { e * t + $0 }.filter { problem.valid($0, student: student) } }
            validPerExample = rows.map(\.count)
            let sums = rows.map { Reference.sum($0.map { values[$0] }) }
            let means = zip(sums, rows).map { $1.isEmpty ? 0 : $0 / Double($1.count) }
            let useSum: Bool
            switch reduction {
            case .sum, .batchmean, .sequenceSum: useSum = true
            case .mean, .none, .sequenceMean: useSum = false
            }
            perExample = useSum ? sums : means
            let validCount = rows.reduce(0) { $0 + $1.count }
            let total = Reference.sum(sums)
            let counted = (0..<n).filter { !rows[$0].isEmpty }
            switch reduction {
            case .mean, .none: (loss, positionsInLoss) = (validCount > 0 ? total / Double(validCount) : 0, 1)
            case .sum: (loss, positionsInLoss) = (total, Double(validCount))
            case .batchmean: (loss, positionsInLoss) = (total / Double(n), Double(validCount) / Double(n))
            case .sequenceSum:
                loss = Reference.sum(counted.map { sums[$0] }) / Double(counted.count)
                positionsInLoss = Double(validCount) / Double(counted.count)
            case .sequenceMean: (loss, positionsInLoss) = (Reference.sum(counted.map { means[$0] }) / Double(counted.count), 1)
            }
        }
    }

    static func score(_ p: Problem, reduction: Reduction, worst: Int, conventions: [Convention] = []) throws -> Scoring.Report {
        let config = LossConfig(
            name: .forwardKL, temperature: p.tau, scaleBySquaredTemperature: p.scaled, beta: p.beta, reduction: reduction)
        return try Scoring.score(
            teacher: p.teacher.outputs, students: p.students.map { Scoring.Student(name: $0.name, outputs: $0.logits.outputs) },
            config: config, ids: p.ids, conventions: conventions, worst: worst, isCancelled: { false }, progress: { _ in })
    }

    /// Per-example losses, the ranking value, the spread, the ranking and the margin of
    /// random problems under every reduction.
    @Test(arguments: Reduction.allCases)
    func studentsMatchTheReference(reduction: Reduction) throws {
        var worst: [String: WorstError] = [:]
        for seed in UInt64(0)..<40 {
            let p = Problem(seed: seed * 7 + 1)
            let report = try Self.score(p, reduction: reduction, worst: p.n)
            // Per-example sums over up to 4 positions carry up to 4 times the engine's
            // per-position error; the aggregates are scaled to means over positions.
            let tolerance = WorstError(absolute: 4e-6, relative: 1e-5)
            var expectedLoss: [String: Double] = [:]
            var scale = 1.0
            for (student, got) in zip(p.students, report.students) {
                #expect(got.name == student.name)
                let want = Expected(p, student.logits, reduction: reduction)
                expectedLoss[student.name] = want.loss
                let at = "seed \(seed) \(student.name) τ=\(p.tau)"
                scale = max(scale, want.positionsInLoss)
                worst["loss", default: WorstError()].record(got.loss / want.positionsInLoss, want.loss / want.positionsInLoss, at: at)
                #expect(got.perExample.map(\.id) == p.ids)
                for e in 0..<p.n {
                    worst["per example", default: tolerance].record(got.perExample[e].loss, want.perExample[e], at: "\(at) e\(e)")
                }
                // The spread covers only examples with a valid position.
                let counted = (0..<p.n).filter { want.validPerExample[$0] > 0 }
                // Its statistics are Double work on the losses, so they carry the losses' error.
                SpreadTests.record(
                    got.spread, counted.map { want.perExample[$0] }, into: &worst, at: at, tolerance: tolerance)
                #expect(got.spread.count == counted.count)
            }
            // Ranking: lowest loss first, the margin from the runner-up.
            let byLoss = p.students.map(\.name).sorted { expectedLoss[$0]! < expectedLoss[$1]! }
            #expect(report.ranking == byLoss, "seed \(seed): \(report.ranking) against \(byLoss)")
            worst["margin", default: WorstError(absolute: 2e-6, relative: 1e-5)].record(
                report.margin! / scale, (expectedLoss[report.ranking[1]]! - expectedLoss[report.ranking[0]]!) / scale,
                at: "seed \(seed)")
        }
        report(worst, "score \(reduction.rawValue)")
    }

    /// The worst examples are the largest per-example losses, largest first; equal losses
    /// keep the lower index first, and an example with no valid position is never listed.
    @Test func worstExamplesBreakTiesByIndexAndSkipEmptyExamples() throws {
        var rng = Rng(99)
        let v = 9, t = 2
        // Examples 1, 3 and 4 are copies of one another (bit-identical losses); example 5
        // would be the worst by far, but is fully masked.
        let base = Logits(n: 1, t: t, v: v, scale: 2, rng: &rng)
        let close = base.perturbed(by: 1.5, rng: &rng)
        var teacher = Logits(n: 6, t: t, v: v, scale: 2, rng: &rng)
        var student = teacher.perturbed(by: 0.3, rng: &rng)
        for e in [1, 3, 4] {
            teacher.values.replaceSubrange((e * t * v)..<((e + 1) * t * v), with: base.values)
            student.values.replaceSubrange((e * t * v)..<((e + 1) * t * v), with: close.values)
        }
        student.values.replaceSubrange((5 * t * v)..<(6 * t * v), with: teacher.values[0..<(t * v)].map { -$0 * 4 })
        teacher.mask = (0..<(6 * t)).map { $0 / t == 5 ? 0 : 1 }
        let ids = ["a", "b", "c", "d", "e", "f"]
        for worst in [0, 1, 2, 3, 5, 10] {
            let report = try Scoring.score(
                teacher: teacher.outputs, students: [Scoring.Student(name: "s", outputs: student.outputs)],
                config: LossConfig(name: .forwardKL, reduction: .mean), ids: ids, conventions: [], worst: worst,
                isCancelled: { false }, progress: { _ in })
            let s = report.students[0]
            // The reference order: by reference loss, largest first, ties by index.
            let reference = (0..<5).map { e -> Double in
                Reference.sum(
                    (0..<t).map { p in
                        let r = e * t + p
                        return Reference.kl(
                            logP: Reference.logSoftmax(teacher.row(r), tau: 1), logQ: Reference.logSoftmax(student.row(r), tau: 1))
                    }) / Double(t)
            }
            let order = (0..<5).sorted { abs(reference[$0] - reference[$1]) > 1e-4 ? reference[$0] > reference[$1] : $0 < $1 }
            #expect(s.worst.map(\.id) == Array(order.prefix(worst)).map { ids[$0] }, "worst \(worst)")
            #expect(s.worst.map(\.index) == Array(order.prefix(worst)), "worst \(worst)")
            #expect(s.perExample.count == 6 && s.perExample[5].loss == 0 && s.spread.count == 5)
        }
    }

    /// `rankedNames` is a stable sort by value: checked against an insertion sort on values
    /// with many ties.
    @Test func rankingIsAStableSortByValue() {
        var rng = Rng(5)
        for trial in 0..<500 {
            let count = Int.random(in: 1...12, using: &rng)
            let values = (0..<count).map { (name: "s\($0)", value: Double(Int.random(in: 0...3, using: &rng)) / 2) }
            var expected: [(name: String, value: Double)] = []
            for item in values {
                let place = expected.lastIndex { $0.value <= item.value }.map { $0 + 1 } ?? 0
                expected.insert(item, at: place)
            }
            #expect(Scoring.rankedNames(values) == expected.map(\.name), "trial \(trial)")
        }
    }

    /// Other tools' numbers: PyTorch's batchmean and mean, Hinton's τ²-scaled KL and TRL's
    /// generalized JSD (with its switch to one-sided KL at β = 0 and β = 1), recomputed from
    /// their definitions over the valid positions.
    @Test(arguments: [0.0, 0.3, 1.0])
    func conventionsMatchTheirDefinitions(beta: Double) throws {
        var worst: [String: WorstError] = [:]
        for seed in UInt64(0)..<20 {
            let p = Problem(seed: 500 + seed, beta: beta)
            let report = try Self.score(p, reduction: .mean, worst: 0, conventions: Convention.allCases)
            for (student, got) in zip(p.students, report.students) {
                let rows = (0..<(p.n * p.t)).filter { p.valid($0, student: student.logits) }
                guard !rows.isEmpty else { continue }
                let kl = p.kl(student.logits)
                let sum = Reference.sum(rows.map { kl[$0] })
                let trl = Reference.sum(
                    rows.map { r -> Double in
                        let lp = Reference.logSoftmax(p.teacher.row(r), tau: p.tau)
                        let lq = Reference.logSoftmax(student.logits.row(r), tau: p.tau)
                        if beta == 0 { return Reference.kl(logP: lp, logQ: lq) }
                        if beta == 1 { return Reference.kl(logP: lq, logQ: lp) }
                        return Reference.generalizedJSD(logP: lp, logQ: lq, beta: beta)
                    })
                let n = Double(p.n), elements = Double(p.n * p.t * p.teacher.v), valid = Double(rows.count)
                // Each value is a sum over the valid positions times a factor: divided by
                // the factor that makes it a mean over positions, it is held to the
                // engine's per-position tolerance.
                let expected: [Convention: (Double, Double)] = [
                    .pytorchBatchmean: (sum / n, valid / n),
                    .pytorchMean: (sum / elements, valid / elements),
                    .hinton: (p.tau * p.tau * sum / n, p.tau * p.tau * valid / n),
                    .trlGeneralizedJSD: (trl / valid, 1),
                ]
                #expect(got.conventions.map(\.convention) == Convention.allCases)
                for c in got.conventions {
                    let (want, scale) = expected[c.convention]!
                    worst[c.convention.rawValue, default: WorstError()].record(
                        c.value / scale, want / scale, at: "seed \(seed) \(student.name) β=\(beta)")
                    #expect(c.distilld == got.loss)
                }
            }
        }
        report(worst, "conventions β=\(beta)")
    }

    @Test func oneStudentHasNoMargin() throws {
        let p = Problem(seed: 3)
        let single = try Scoring.score(
            teacher: p.teacher.outputs, students: [Scoring.Student(name: "only", outputs: p.students[0].logits.outputs)],
            config: LossConfig(name: .forwardKL), ids: p.ids, conventions: [], worst: 1, isCancelled: { false },
            progress: { _ in })
        #expect(single.ranking == ["only"] && single.margin == nil)
    }
}

/// `Scoring.scoreInParts` (examples made a part at a time, for runs too large to hold) gives the
/// report `score` gives over all the examples at once: the per-example and per-position values
/// bit for bit, the aggregates and side statistics up to rounding, under every reduction and
/// with every convention, however the examples are split.
struct ScoringInPartsTests {
    static func slice(_ l: Logits, _ range: Range<Int>) -> Logits {
        Logits(
            n: range.count, t: l.t, v: l.v, values: Array(l.values[(range.lowerBound * l.t * l.v)..<(range.upperBound * l.t * l.v)]),
            mask: l.mask.map { Array($0[(range.lowerBound * l.t)..<(range.upperBound * l.t)]) })
    }

    @Test(arguments: Reduction.allCases)
    func partsGiveTheWholeReport(reduction: Reduction) throws {
        for seed in UInt64(0)..<20 {
            let p = ScoringTests.Problem(seed: seed * 13 + 5)
            let whole = try ScoringTests.score(p, reduction: reduction, worst: p.n, conventions: Convention.allCases)
            var rng = Rng(seed)
            // Random cut points, one part per example at most.
            var cuts = Set((0..<Int.random(in: 0...(p.n - 1), using: &rng)).map { _ in Int.random(in: 1..<p.n, using: &rng) })
            cuts.formUnion([0, p.n])
            let bounds = cuts.sorted()
            let ranges = zip(bounds, bounds.dropFirst()).map { $0..<$1 }
            let config = LossConfig(
                name: .forwardKL, temperature: p.tau, scaleBySquaredTemperature: p.scaled, beta: p.beta, reduction: reduction)
            let parts = try Scoring.scoreInParts(
                parts: ranges.count,
                part: { i in
                    (Self.slice(p.teacher, ranges[i]).outputs, p.students.map { Self.slice($0.logits, ranges[i]).outputs }, nil)
                },
                names: p.students.map(\.name), vocab: p.teacher.v, config: config, ids: p.ids, conventions: Convention.allCases,
                worst: p.n, isCancelled: { false }, progress: { _ in })
            let at = "seed \(seed), parts \(ranges)"
            #expect(parts.ranking == whole.ranking, "\(at)")
            for (a, b) in zip(parts.students, whole.students) {
                #expect(a.result.perPosition == b.result.perPosition && a.result.valid == b.result.valid, "\(at)")
                #expect(a.perExample.map(\.loss) == b.perExample.map(\.loss) && a.worst.map(\.id) == b.worst.map(\.id), "\(at)")
                #expect(a.loss == b.loss && a.result.reduced == b.result.reduced, "\(at)")
                #expect(a.result.extras.top1Agreement == b.result.extras.top1Agreement, "\(at)")
                for (x, y) in [
                    (a.result.extras.meanTeacherEntropy, b.result.extras.meanTeacherEntropy),
                    (a.result.extras.meanStudentEntropy, b.result.extras.meanStudentEntropy),
                    (a.result.extras.meanCrossEntropy, b.result.extras.meanCrossEntropy),
                ] {
                    #expect((x == nil) == (y == nil) && abs((x ?? 0) - (y ?? 0)) <= 1e-12 * max(1, abs(y ?? 0)), "\(at)")
                }
                #expect(a.conventions.map(\.value) == b.conventions.map(\.value), "\(at)")
            }
        }
    }
}

/// A run cancelled between parts keeps what it finished: `PartialScore` holds the report over the
/// examples of the parts done, each value what the whole run gives them; cancelled before any
/// part is finished, it is a plain `CancellationError`.
struct ScoringInPartsCancellationTests {
    /// Set from the progress callback, read by `isCancelled` (an atomic: both are `@Sendable`).
    final class Flag: Sendable {
        let raised = Atomic<Bool>(false)
    }

    @Test func cancelledAfterSomePartsKeepsThemWhole() throws {
        for seed in UInt64(0)..<10 {
            let p = ScoringTests.Problem(seed: seed * 7 + 3)
            guard p.n >= 2 else { continue }
            let whole = try ScoringTests.score(p, reduction: .sequenceSum, worst: p.n, conventions: [])
            let ranges = (0..<p.n).map { $0..<($0 + 1) }
            let config = LossConfig(
                name: .forwardKL, temperature: p.tau, scaleBySquaredTemperature: p.scaled, beta: p.beta, reduction: .sequenceSum)
            for stopAfter in 0..<(p.n - 1) {
                let flag = Flag()
                do {
                    _ = try Scoring.scoreInParts(
                        parts: ranges.count,
                        part: { i in
                            (
                                ScoringInPartsTests.slice(p.teacher, ranges[i]).outputs,
                                p.students.map { ScoringInPartsTests.slice($0.logits, ranges[i]).outputs }, nil
                            )
                        },
                        names: p.students.map(\.name), vocab: p.teacher.v, config: config, ids: p.ids, conventions: [],
                        worst: p.n, isCancelled: { flag.raised.load(ordering: .relaxed) },
                        progress: { fraction in
                            // Called once each part's results are kept: cancel after part `stopAfter`.
                            if Int((fraction * Double(ranges.count)).rounded()) == stopAfter + 1 {
                                flag.raised.store(true, ordering: .relaxed)
                            }
                        })
                    Issue.record("seed \(seed): not cancelled")
                } catch let partial as Scoring.PartialScore {
                    let done = stopAfter + 1
                    #expect(partial.examplesDone == done, "seed \(seed)")
                    for (a, b) in zip(partial.report.students, whole.students) {
                        #expect(a.result.examples == done)
                        #expect(a.perExample.map(\.loss) == Array(b.perExample.map(\.loss).prefix(done)), "seed \(seed)")
                        #expect(a.perExample.map(\.id) == Array(p.ids.prefix(done)))
                        #expect(a.result.perPosition == Array(b.result.perPosition.prefix(done * p.teacher.t)), "seed \(seed)")
                    }
                }
            }
            // Cancelled before the first part is done: nothing partial to give.
            #expect(throws: CancellationError.self) {
                try Scoring.scoreInParts(
                    parts: ranges.count,
                    part: { i in
                        (
                            ScoringInPartsTests.slice(p.teacher, ranges[i]).outputs,
                            p.students.map { ScoringInPartsTests.slice($0.logits, ranges[i]).outputs }, nil
                        )
                    },
                    names: p.students.map(\.name), vocab: p.teacher.v, config: config, ids: p.ids, conventions: [], worst: p.n,
                    isCancelled: { true }, progress: { _ in })
            }
        }
    }
}
