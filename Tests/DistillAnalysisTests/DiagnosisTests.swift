import DistillAnalysis
import DistillStore
import DistillTestSupport
import Foundation
import Testing

/// distill/diagnose's context gap (`Diagnosis`) against a float64 reference: KL(p_f‖p_s) per
/// example, and the student's loss against the full-context teacher split exactly into the
/// context gap and the capacity gap, KL(p_f‖q) = KL(p_f‖p_s) + E_{p_f}[log(p_s/q)].
struct DiagnosisTests {
    struct Problem {
        let ids: [String]
        /// Row of each dataset example in the teacher's outputs (the rows come in another order).
        let rowOf: [Int]
        let full: Logits, simplified: Logits, student: Logits, studentFull: Logits
        let dataset: DatasetEntry

        init(seed: UInt64, loud: Int? = nil) {
            var rng = Rng(seed)
            let n = Int.random(in: 4...12, using: &rng), t = Int.random(in: 1...4, using: &rng)
            let v = [3, 8, 40][Int.random(in: 0..<3, using: &rng)]
            var full = Logits(n: n, t: t, v: v, scale: 2, rng: &rng)
            // Some positions do not take part, and one example has none.
            var mask = (0..<(n * t)).map { _ in UInt8(rng.uniform() < 0.8 ? 1 : 0) }
            let empty = Int.random(in: 0..<n, using: &rng)
            for p in 0..<t { mask[empty * t + p] = 0 }
            full.mask = mask
            var simplified = full.perturbed(by: 0.7, rng: &rng)
            if let loud {
                // One example whose simplification changes everything the teacher says.
                for i in (loud * t * v)..<((loud + 1) * t * v) { simplified.values[i] = -simplified.values[i] * 3 }
            }
            var student = simplified.perturbed(by: 0.8, rng: &rng)
            var studentFull = full.perturbed(by: 0.8, rng: &rng)
            // Padding is where it is for every model of the same examples.
            (simplified.mask, student.mask, studentFull.mask) = (mask, mask, mask)
            self.full = full
            self.simplified = simplified
            self.student = student
            self.studentFull = studentFull
            ids = (0..<n).map { "x\($0)" }
            rowOf = Array(0..<n).shuffled(using: &rng)
            // Example j is teacher row rowOf[j]; its id is the teacher's id for that row.
            dataset = DatasetEntry(
                name: "d", source: nil,
                contents: LoadedDataset(
                    kind: .paired, format: nil,
                    examples: (0..<n).map {
                        Example(id: "x\($0)", full: "The full context number \($0).", simplified: "Context \($0).", line: $0 + 1)
                    },
                    inputs: [], idsSynthesized: false, warnings: [], bytes: 0))
        }

        /// Teacher ids in row order.
        var teacherIds: [String] {
            var out = [String](repeating: "", count: ids.count)
            for (example, row) in rowOf.enumerated() { out[row] = ids[example] }
            return out
        }

        var models: Diagnosis.Models {
            Diagnosis.Models(
                teacherFull: full.outputs, teacherSimplified: simplified.outputs, student: student.outputs,
                studentFull: studentFull.outputs, ids: teacherIds)
        }

        /// Mean over the example's valid positions of `f(row)`, nil when it has none.
        func mean(example: Int, _ f: (Int) -> Double) -> Double? {
            let t = full.t
            let rows = (0..<t).map { rowOf[example] * t + $0 }.filter { full.isValid($0) }
            return rows.isEmpty ? nil : Reference.sum(rows.map(f)) / Double(rows.count)
        }

        func logs(_ m: Logits, _ r: Int) -> [Double] { Reference.logSoftmax(m.row(r), tau: 1) }
    }

    static func run(_ p: Problem, listLimit: Int = 50) throws -> Diagnosis.Report {
        try Diagnosis.run(
            dataset: p.dataset, inputs: nil, nearThreshold: 0.9, models: p.models, listLimit: listLimit, isCancelled: { false },
            progress: { _ in })
    }

    @Test(arguments: 0..<3)
    func contextGapAndItsSplitMatchTheReference(group: Int) throws {
        var worst: [String: WorstError] = [:]
        for trial in 0..<15 {
            let p = Problem(seed: UInt64(group * 100 + trial))
            let report = try Self.run(p)
            let gap = try #require(report.contextGap)
            let at = "group \(group) trial \(trial)"
            let counted = p.ids.indices.filter { p.mean(example: $0) { _ in 0 } != nil }
            // Per example, in dataset order: KL(p_f‖p_s), mean over its valid positions.
            let perExample = counted.map { e in
                p.mean(example: e) { Reference.kl(logP: p.logs(p.full, $0), logQ: p.logs(p.simplified, $0)) }!
            }
            #expect(gap.perExample.map(\.id) == counted.map { p.ids[$0] }, "\(at)")
            for (got, want) in zip(gap.perExample, perExample) {
                worst["KL(p_f‖p_s)", default: WorstError()].record(got.kl, want, at: "\(at) \(got.id)")
            }
            SpreadTests.record(gap.spread, perExample, into: &worst, at: at, tolerance: WorstError())
            func average(_ f: (Int) -> Double) -> Double { Reference.sum(counted.map { p.mean(example: $0, f)! }) / Double(counted.count) }
            let split = try #require(gap.student)
            let total = average { Reference.kl(logP: p.logs(p.full, $0), logQ: p.logs(p.student, $0)) }
            // E_{p_f}[log p_s − log q]: the capacity gap from its own definition, not as a difference.
            let capacity = average { r in
                let (lf, ls, lq) = (p.logs(p.full, r), p.logs(p.simplified, r), p.logs(p.student, r))
                return Reference.sum(lf.indices.map { exp(lf[$0]) * (ls[$0] - lq[$0]) })
            }
            let tolerance = WorstError(absolute: 2e-6, relative: 1e-5)
            worst["total KL(p_f‖q)", default: tolerance].record(split.total, total, at: at)
            worst["context gap", default: tolerance].record(split.contextGap, Reference.sum(perExample) / Double(counted.count), at: at)
            worst["capacity gap E[log p_s/q]", default: tolerance].record(split.capacityGap, capacity, at: at)
            worst["KL(p_s‖q)", default: tolerance].record(
                split.againstSimplifiedTeacher, average { Reference.kl(logP: p.logs(p.simplified, $0), logQ: p.logs(p.student, $0)) },
                at: at)
            worst["KL(p_f‖q_full)", default: tolerance].record(
                split.onFullContext!, average { Reference.kl(logP: p.logs(p.full, $0), logQ: p.logs(p.studentFull, $0)) }, at: at)
            // The split is exact: the two gaps add up to the total.
            worst["total = context + capacity", default: tolerance].record(split.contextGap + split.capacityGap, total, at: at)
            // The largest gaps come first.
            for (a, b) in zip(gap.largest, gap.largest.dropFirst()) { #expect(a.kl >= b.kl, "\(at)") }
            #expect(gap.largest.count == min(50, counted.count))
        }
        report(worst, "diagnose group \(group)")
    }

    /// An example whose simplification takes most of what the teacher says is flagged once
    /// its gap is at least twice the mean and in the top tenth; the threshold is
    /// max(2·mean, p90) of the per-example gaps.
    @Test func largeContextGapIsFlaggedAboveTwiceTheMeanAndTheTopTenth() throws {
        var worst: [String: WorstError] = [:]
        for trial in 0..<10 {
            let p = Problem(seed: UInt64(900 + trial), loud: trial % 4)
            let report = try Self.run(p, listLimit: 3)
            let counted = p.ids.indices.filter { p.mean(example: $0) { _ in 0 } != nil }
            let perExample = counted.map { e in
                (p.ids[e], p.mean(example: e) { Reference.kl(logP: p.logs(p.full, $0), logQ: p.logs(p.simplified, $0)) }!)
            }
            let summary = Reference.Summary(perExample.map(\.1))
            let threshold = max(2 * summary.mean, summary.p90)
            let largest = perExample.sorted { $0.1 > $1.1 }.prefix(3)
            let flagged = largest.filter { $0.1 >= threshold * (1 + 1e-5) && $0.1 > 0 }.map(\.0)
            let unsure = largest.contains { abs($0.1 - threshold) <= threshold * 1e-5 }
            let diagnostic = report.diagnostics.first { $0.code == "large-context-gap" }
            if !unsure {
                #expect((diagnostic?.exampleIds ?? []) == flagged, "trial \(trial)")
            }
            if let diagnostic {
                worst["threshold", default: WorstError()].record(diagnostic.data["threshold"]!, threshold, at: "trial \(trial)")
                worst["mean", default: WorstError()].record(diagnostic.data["mean"]!, summary.mean, at: "trial \(trial)")
                #expect(diagnostic.severity == 3)
                // Lines are the dataset's, for the examples flagged.
                #expect(diagnostic.lines == diagnostic.exampleIds.map { id in p.dataset.examples.first { $0.id == id }!.line })
            }
        }
        #expect(worst["threshold"] != nil, "no trial flagged an example")
        report(worst, "large context gap")
    }

    /// Teacher rows with no example, and examples with no row, are reported; the matched
    /// ones are still compared.
    @Test func unmatchedRowsAreReported() throws {
        let p = Problem(seed: 42)
        var ids = p.teacherIds
        ids[0] = "not-in-the-dataset"
        let models = Diagnosis.Models(
            teacherFull: p.full.outputs, teacherSimplified: p.simplified.outputs, student: nil, ids: ids)
        let report = try Diagnosis.run(
            dataset: p.dataset, inputs: nil, nearThreshold: 0.9, models: models, listLimit: 10, isCancelled: { false },
            progress: { _ in })
        let unmatched = try #require(report.diagnostics.first { $0.code == "teacher-rows-unmatched" })
        let missing = p.rowOf.firstIndex(of: 0)!
        #expect(unmatched.data["unmatchedTeacherRows"] == 1 && unmatched.data["unmatchedExamples"] == 1)
        #expect(unmatched.exampleIds == [p.ids[missing]] && unmatched.lines == [missing + 1])
        #expect(report.contextGap?.student == nil)
        #expect(report.contextGap?.perExample.contains { $0.id == p.ids[missing] } == false)
    }
}
