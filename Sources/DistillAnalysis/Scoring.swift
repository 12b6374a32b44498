import DistillMath
import DistillTensor

/// distill/score's computation: every student against one teacher, with the
/// per-example view, the spread, the ranking and other tools' conventions.
public enum Scoring {
    public struct Student: Sendable {
        public let name: String
        public let outputs: ModelOutputs
        public init(name: String, outputs: ModelOutputs) {
            self.name = name
            self.outputs = outputs
        }
    }

    public struct ExampleLoss: Sendable {
        public let index: Int
        public let id: String
        public let loss: Double
    }

    public struct StudentReport: Sendable {
        public let name: String
        /// The ranking value: the aggregate under the reduction, or `rankingValue`
        /// for none / sequence_sum / sequence_mean.
        public let loss: Double
        public let result: LossResult
        /// Per example: the sum over its valid positions for sum, batchmean and
        /// sequence_sum, else the mean over them.
        public let perExample: [ExampleLoss]
        public let spread: Spread
        public let worst: [ExampleLoss]
        public let conventions: [ConventionResult]
    }

    public struct Report: Sendable {
        public let config: LossConfig
        public let students: [StudentReport]
        /// Student names, best (lowest loss) first.
        public let ranking: [String]
        /// Loss of the runner-up minus the best's (nil with one student).
        public let margin: Double?
    }

    /// Scores every student. `progress` receives the overall fraction done.
    public static func score(
        teacher: ModelOutputs?, students: [Student], config: LossConfig, ids: [String], conventions: [Convention],
        worst: Int, isCancelled: @escaping @Sendable () -> Bool, progress: @escaping @Sendable (Double) -> Void
    ) throws -> Report {
        let steps = Double(students.count * (1 + conventions.count))
        var done = 0.0
        var reports: [StudentReport] = []
        for student in students {
            var results: [LossResult] = []
            for c in [config] + conventions.map({ $0.config(from: config).0 }) {
                let base = done
                results.append(
                    try LossScorer.score(
                        teacher: teacher, student: student.outputs, config: c, isCancelled: isCancelled,
                        progress: { progress((base + $0) / steps) }))
                done += 1
            }
            reports.append(
                report(
                    student.name, result: results[0], conventionResults: Array(results.dropFirst()), config: config, ids: ids,
                    conventions: conventions, worst: worst, vocab: student.outputs.vocab))
        }
        return rank(reports, config: config)
    }

    /// Scores every student over examples made a part at a time (`part(i)` for i in 0..<parts
    /// gives the teacher's and each student's outputs for consecutive examples, all with the same
    /// positions, and the part's hard labels when `config` has labels), so that no more than one
    /// part's distributions are held at once. The report is
    /// the one `score` gives over all the examples together: each part's results are joined
    /// (`LossResult.joined`) before anything is reduced. `progress` receives the fraction of parts done.
    /// Cancelled before any part is finished it throws `CancellationError`; after, `PartialScore`.
    public static func scoreInParts(
        parts: Int, part: (Int) throws -> (teacher: ModelOutputs?, students: [ModelOutputs], labels: Tensor?), names: [String],
        vocab: Int,
        config: LossConfig, ids: [String], conventions: [Convention], worst: Int,
        isCancelled: @escaping @Sendable () -> Bool, progress: (Double) -> Void
    ) throws -> Report {
        let configs = [config] + conventions.map { $0.config(from: config).0 }
        var results = [[[LossResult]]](repeating: configs.map { _ in [] }, count: names.count)
        var examplesDone = 0
        for p in 0..<parts {
            do {
                if isCancelled() { throw CancellationError() }
                let outputs = try part(p)
                precondition(
                    outputs.students.count == names.count, "a part gave \(outputs.students.count) students for \(names.count)")
                // The part's results are kept only once every student's are in, so that a
                // cancellation inside it leaves the parts before it whole.
                let scored = try outputs.students.map { student in
                    try configs.map { cfg in
                        try LossScorer.score(teacher: outputs.teacher, student: student, config: cfg, isCancelled: isCancelled)
                    }
                }
                for (s, row) in scored.enumerated() { for (c, r) in row.enumerated() { results[s][c].append(r) } }
                examplesDone += scored.first?.first?.examples ?? 0
            } catch let cancelled as CancellationError {
                guard examplesDone > 0 else { throw cancelled }
                throw PartialScore(
                    report: joinedReport(
                        results, names: names, vocab: vocab, config: config, ids: Array(ids.prefix(examplesDone)),
                        conventions: conventions, worst: worst),
                    examplesDone: examplesDone)
            }
            progress(Double(p + 1) / Double(parts))
        }
        return joinedReport(
            results, names: names, vocab: vocab, config: config, ids: ids, conventions: conventions, worst: worst)
    }

    /// What `scoreInParts` throws when it is cancelled after at least one part: the report over
    /// the examples of the parts that were finished (the first `examplesDone`), each of their
    /// values what the whole run would have given them.
    public struct PartialScore: Error, Sendable {
        public let report: Report
        public let examplesDone: Int
    }

    /// The report over every part's results joined, per student and per config.
    static func joinedReport(
        _ results: [[[LossResult]]], names: [String], vocab: Int, config: LossConfig, ids: [String],
        conventions: [Convention], worst: Int
    ) -> Report {
        let reports = names.enumerated().map { s, name in
            let joined = results[s].map(LossResult.joined)
            return report(
                name, result: joined[0], conventionResults: Array(joined.dropFirst()), config: config, ids: ids,
                conventions: conventions, worst: worst, vocab: vocab)
        }
        return rank(reports, config: config)
    }

    /// One student's report from its result under `config` and under each convention's config.
    static func report(
        _ name: String, result: LossResult, conventionResults: [LossResult], config: LossConfig, ids: [String],
        conventions: [Convention], worst: Int, vocab: Int
    ) -> StudentReport {
        let useSum = [.sum, .batchmean, .sequenceSum].contains(config.reduction)
        let values = useSum ? result.perSequenceSum : result.perSequenceMean
        let perExample = values.enumerated().map { ExampleLoss(index: $0, id: ids[$0], loss: $1) }
        // Examples with no valid position say nothing about the student.
        let counted = perExample.filter { result.validPerSequence[$0.index] > 0 }
        let worstExamples = counted.sorted { $0.loss > $1.loss || ($0.loss == $1.loss && $0.index < $1.index) }.prefix(worst)
        let loss = result.aggregate ?? rankingValue(result)
        let (examples, positions) = (result.examples, result.positions)
        let conventionReports = zip(conventions, conventionResults).map { convention, r in
            let (_, divisor) = convention.config(from: config)
            let sum = r.aggregate ?? 0
            let n = Double(examples)
            let value: Double
            switch divisor {
            case .examples: value = n > 0 ? sum / n : 0
            case .elements:
                let elements = examples * positions * vocab
                value = elements > 0 ? sum / Double(elements) : 0
            case .positions: value = r.validPositions > 0 ? sum / Double(r.validPositions) : 0
            }
            return ConventionResult(
                convention: convention, value: value, distilld: loss,
                explanation: convention.explanation(
                    base: config, value: value, ours: loss, examples: examples, positions: positions, vocab: vocab))
        }
        return StudentReport(
            name: name, loss: loss, result: result, perExample: perExample, spread: Spread(counted.map(\.loss)),
            worst: Array(worstExamples), conventions: conventionReports)
    }

    /// One number to rank by when the reduction keeps an array: for `none` the mean
    /// over valid positions, for `sequence_sum` and `sequence_mean` the mean over the
    /// examples that have a valid position. Masked entries never pull it down.
    static func rankingValue(_ r: LossResult) -> Double {
        // Correctly rounded sums, so shards merged by their per-example values give the same bits.
        switch r.reduction {
        case .none:
            return r.validPositions > 0 ? r.perSequenceSum.exactSum / Double(r.validPositions) : 0
        default:
            let counted = r.reduced.indices.filter { r.validPerSequence[$0] > 0 }
            return counted.isEmpty ? 0 : counted.map { r.reduced[$0] }.exactSum / Double(counted.count)
        }
    }

    /// Orders reports by loss, lowest first; ties keep the order the students were given in.
    public static func rank(_ reports: [StudentReport], config: LossConfig) -> Report {
        let ranking = rankedNames(reports.map { ($0.name, $0.loss) })
        var margin: Double? = nil
        if ranking.count > 1 {
            let byName = Dictionary(uniqueKeysWithValues: reports.map { ($0.name, $0.loss) })
            margin = byName[ranking[1]]! - byName[ranking[0]]!
        }
        return Report(config: config, students: reports, ranking: ranking, margin: margin)
    }

    /// Names ordered by value, lowest first; ties keep the order given.
    public static func rankedNames(_ values: [(name: String, value: Double)]) -> [String] {
        values.enumerated().sorted {
            $0.element.value < $1.element.value || ($0.element.value == $1.element.value && $0.offset < $1.offset)
        }.map(\.element.name)
    }
}
