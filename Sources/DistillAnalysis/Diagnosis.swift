import DistillMath
import DistillStore
import DistillTensor
import DistillText

/// distill/diagnose: was the student trained on the simplified dataset D' or on
/// the teacher's full-context D? Are the pairs sound? How much does the
/// simplification take away from the teacher?
public enum Diagnosis {
    /// One finding in the shape of LSP's `Diagnostic`, before it is placed on lines.
    public struct Diagnostic: Sendable {
        public let code: String
        /// LSP DiagnosticSeverity: 1 error, 2 warning, 3 information, 4 hint.
        public let severity: Int
        public let message: String
        public let exampleIds: [String]
        /// 1-based lines of the examples concerned, in the dataset's file.
        public let lines: [Int]
        public let data: [String: Double]
    }

    /// Codes distilld adds beyond the pair-integrity codes of `Finding.allCodes`.
    public static let codes: [FindingCode] = [
        FindingCode(
            code: "trained-on-full-context", title: "Student trained on the full-context dataset",
            description: "At least 90 % of the training inputs that match the dataset are full contexts: the student sees D, not D'.",
            severity: .error),
        FindingCode(
            code: "mixed-contexts", title: "Training inputs mix full and simplified contexts",
            description: "Between 10 % and 90 % of the matched training inputs are full contexts.", severity: .warning),
        FindingCode(
            code: "some-full-contexts", title: "A few training inputs are full contexts",
            description: "Up to 10 % of the matched training inputs are full contexts: a little of D leaked into D'.",
            severity: .warning),
        FindingCode(
            code: "unknown-inputs", title: "Most training inputs are not in the dataset",
            description: "More than half of the training inputs match neither a full nor a simplified input.", severity: .warning),
        FindingCode(
            code: "ambiguous-inputs", title: "Training inputs cannot be told apart",
            description: "Every matched training input is identical in D and D'.", severity: .information),
        FindingCode(
            code: "large-context-gap", title: "The simplification removes what the teacher relied on",
            description: "KL(Pr_t(·|x) ‖ Pr_t(·|x')) for these examples is at least twice the dataset's mean and in its top tenth.",
            severity: .information),
        FindingCode(
            code: "teacher-rows-unmatched", title: "Teacher rows and dataset examples do not line up",
            description: "Some teacher rows have no dataset example, or the other way round.", severity: .warning),
    ]

    public struct ClassifiedInput: Sendable {
        public let index: Int
        public let line: Int
        public let kind: String
        public let method: String?
        public let similarity: Double
        public let exampleId: String?
    }

    public struct ContextGap: Sendable {
        /// Per matched example: KL(p_full ‖ p_simplified), mean over its valid positions.
        public let perExample: [(id: String, kl: Double)]
        public let spread: Spread
        public let largest: [(id: String, kl: Double)]
        /// The student's loss against the full-context teacher, split exactly:
        /// KL(p_f‖q) = KL(p_f‖p_s) + E_{p_f}[log(p_s/q)], the context gap plus the
        /// capacity gap (the latter may be negative for single examples).
        public let student: StudentSplit?
    }

    public struct StudentSplit: Sendable {
        public let total: Double
        public let contextGap: Double
        public let capacityGap: Double
        /// KL(p_simplified ‖ q): what the student misses of what the teacher says from x' alone.
        public let againstSimplifiedTeacher: Double
        /// KL(p_full ‖ q(·|x)): the student's loss when it, too, reads the full context
        /// (given student outputs on x); `total` minus this is what x' costs the student.
        public let onFullContext: Double?
    }

    public struct Report: Sendable {
        public let classification: Classification?
        public let classified: [ClassifiedInput]
        public let integrity: [Finding]
        public let stats: SimplificationStats
        public let contextGap: ContextGap?
        public let diagnostics: [Diagnostic]
        public let summary: String
    }

    public struct Models: Sendable {
        public let teacherFull: ModelOutputs
        public let teacherSimplified: ModelOutputs
        /// The student's outputs on the simplified inputs x' (what it is deployed on).
        public let student: ModelOutputs?
        /// The student's outputs on the full contexts x, when available.
        public let studentFull: ModelOutputs?
        /// Ids of the rows (shared by all), or nil to match by order.
        public let ids: [String]?
        public init(
            teacherFull: ModelOutputs, teacherSimplified: ModelOutputs, student: ModelOutputs?, studentFull: ModelOutputs? = nil,
            ids: [String]?
        ) {
            self.teacherFull = teacherFull
            self.teacherSimplified = teacherSimplified
            self.student = student
            self.studentFull = studentFull
            self.ids = ids
        }
    }

    public static func pairs(_ examples: [Example]) -> [TextPair] {
        examples.map {
            TextPair(id: $0.hasId ? $0.id : nil, full: $0.full, simplified: $0.simplified, target: $0.target, label: $0.label?.description)
        }
    }

    public static func run(
        dataset: DatasetEntry, inputs: [InputRecord]?, nearThreshold: Double, models: Models?, listLimit: Int,
        isCancelled: @escaping @Sendable () -> Bool, progress: @escaping @Sendable (Double) -> Void
    ) throws -> Report {
        let examples = dataset.examples
        let textPairs = pairs(examples)
        var diagnostics: [Diagnostic] = []
        var sentences: [String] = []

        // 1. What was the student trained on?
        var classification: Classification? = nil
        var classified: [ClassifiedInput] = []
        if let inputs {
            progress(0.05)
            let c = classifyInputs(pairs: textPairs, inputs: inputs.map(\.text), nearThreshold: nearThreshold)
            try check(isCancelled)
            classification = c
            classified = c.matches.map { m in
                let pairIndex: Int? = m.pairIndex
                return ClassifiedInput(
                    index: m.inputIndex, line: inputs[m.inputIndex].line, kind: m.kind.name, method: m.method?.rawValue,
                    similarity: m.similarity, exampleId: pairIndex.map { examples[$0].id })
            }
            sentences.append(c.verdict + " " + c.consequence)
            if let d = classificationDiagnostic(c, examples: examples, listLimit: listLimit) { diagnostics.append(d) }
        }
        progress(0.4)

        // 2. Are the pairs sound?
        let findings = checkPairs(textPairs)
        let stats = simplificationStats(textPairs)
        try check(isCancelled)
        for f in findings {
            let indices = Array(f.exampleIndices.prefix(listLimit))
            diagnostics.append(
                Diagnostic(
                    code: f.code, severity: f.severity.rawValue, message: f.message,
                    exampleIds: indices.map { examples[$0].id }, lines: indices.map { examples[$0].line },
                    data: f.data.merging(["count": Double(f.exampleIndices.count)]) { a, _ in a }))
        }
        if findings.isEmpty {
            sentences.append("All \(ProseFormat.count(examples.count, "pair")) pass the integrity checks.")
        } else {
            let total = Set(findings.flatMap(\.exampleIndices)).count
            sentences.append(
                "\(ProseFormat.count(total, "pair")) of \(ProseFormat.count(examples.count)) \(total == 1 ? "has" : "have") integrity problems (\(findings.map(\.code).joined(separator: ", ")))."
            )
        }
        progress(0.6)

        // 3. How much does the simplification take away from the teacher?
        var gap: ContextGap? = nil
        if let models {
            gap = try contextGap(models, dataset: dataset, listLimit: listLimit, isCancelled: isCancelled, diagnostics: &diagnostics)
            if let g = gap {
                sentences.append(
                    "On average the simplification moves the teacher by KL(Pr_t(·|x) ‖ Pr_t(·|x')) = \(ProseFormat.number(g.spread.mean)) nats per example (max \(ProseFormat.number(g.spread.max)), example \(g.largest.first?.id ?? "-"))."
                )
                if let s = g.student, let onFull = s.onFullContext {
                    sentences.append(
                        "Reading the full context too, the student's loss would be \(ProseFormat.number(onFull)) instead of \(ProseFormat.number(s.total)): the simplification costs it \(ProseFormat.number(s.total - onFull)) nats per example."
                    )
                }
                if let s = g.student {
                    let share = s.total > 0 ? s.contextGap / s.total : 0
                    sentences.append(
                        "Of the student's loss against the full-context teacher, \(ProseFormat.number(s.total)), the context gap accounts for \(ProseFormat.number(s.contextGap)) (\(ProseFormat.percent(share))) and the capacity gap for \(ProseFormat.number(s.capacityGap))."
                    )
                }
            }
        }
        progress(1)
        return Report(
            classification: classification, classified: classified, integrity: findings, stats: stats, contextGap: gap,
            diagnostics: diagnostics, summary: sentences.joined(separator: " "))
    }

    static func check(_ isCancelled: () -> Bool) throws {
        if isCancelled() { throw CancellationError() }
    }

    static func classificationDiagnostic(_ c: Classification, examples: [Example], listLimit: Int) -> Diagnostic? {
        let code: String
        let kindWanted: String
        switch c.regime {
        case .mostlyFull: code = "trained-on-full-context"; kindWanted = "full"
        case .mixed: code = "mixed-contexts"; kindWanted = "full"
        case .mostlySimplified where c.counts.full > 0: code = "some-full-contexts"; kindWanted = "full"
        case .mostlyUnknown: code = "unknown-inputs"; kindWanted = "unknown"
        case .inconclusive: code = "ambiguous-inputs"; kindWanted = "ambiguous"
        default: return nil
        }
        let severity = codes.first { $0.code == code }!.severity.rawValue
        let hits = c.matches.filter { $0.kind.name == kindWanted }
        let pairIndices = hits.compactMap(\.pairIndex).prefix(listLimit)
        return Diagnostic(
            code: code, severity: severity, message: c.verdict + " " + c.consequence,
            exampleIds: pairIndices.map { examples[$0].id }, lines: pairIndices.map { examples[$0].line },
            data: [
                "full": Double(c.counts.full), "simplified": Double(c.counts.simplified), "unknown": Double(c.counts.unknown),
                "ambiguous": Double(c.counts.ambiguous), "total": Double(c.counts.total), "fullRate": c.fullRate,
            ])
    }

    static func contextGap(
        _ m: Models, dataset: DatasetEntry, listLimit: Int, isCancelled: @escaping @Sendable () -> Bool, diagnostics: inout [Diagnostic]
    ) throws -> ContextGap {
        let matching = DistillStore.match(teacherIds: m.ids, dataset: dataset, teacherRows: m.teacherFull.examples)
        if !matching.isComplete {
            let rows = matching.unmatchedTeacherRows.count
            let missing = matching.unmatchedExamples.prefix(listLimit).map { dataset.examples[$0] }
            diagnostics.append(
                Diagnostic(
                    code: "teacher-rows-unmatched", severity: 2,
                    message:
                        "\(ProseFormat.count(rows, "teacher row")) match no example and \(ProseFormat.count(matching.unmatchedExamples.count, "example")) have no teacher row (matched by \(matching.method.rawValue)).",
                    exampleIds: missing.map(\.id), lines: missing.map(\.line),
                    data: ["unmatchedTeacherRows": Double(rows), "unmatchedExamples": Double(matching.unmatchedExamples.count)]))
        }
        var kl = LossConfig(name: .forwardKL, reduction: .sequenceMean)
        kl.renormalize = true
        let gap = try LossScorer.score(teacher: m.teacherFull, student: m.teacherSimplified, config: kl, isCancelled: isCancelled)
        var per: [(id: String, kl: Double)] = []
        for pair in matching.pairs where gap.validPerSequence[pair.teacherRow] > 0 {
            per.append((dataset.examples[pair.example].id, gap.perSequenceMean[pair.teacherRow]))
        }
        let largest = per.sorted { $0.kl > $1.kl }.prefix(listLimit)
        // "Large" means at least twice the mean gap and in the top tenth of the dataset.
        let spread = Spread(per.map(\.kl))
        let cut = max(2 * spread.mean, spread.p90)
        let large = largest.filter { $0.kl >= cut && $0.kl > 0 }
        if !large.isEmpty {
            let lines = large.compactMap { l in dataset.examples.first { $0.id == l.id }?.line }
            diagnostics.append(
                Diagnostic(
                    code: "large-context-gap", severity: 3,
                    message:
                        "The simplification takes the most from the teacher on \(large.map(\.id).prefix(5).joined(separator: ", ")) (KL up to \(ProseFormat.number(large.first!.kl)) nats, against a mean of \(ProseFormat.number(spread.mean))).",
                    exampleIds: large.map(\.id), lines: lines, data: ["max": large.first!.kl, "mean": spread.mean, "threshold": cut]))
        }
        var split: StudentSplit? = nil
        if let student = m.student {
            let rows = Set(matching.pairs.map(\.teacherRow))
            let total = try LossScorer.score(teacher: m.teacherFull, student: student, config: kl, isCancelled: isCancelled)
            let simplified = try LossScorer.score(teacher: m.teacherSimplified, student: student, config: kl, isCancelled: isCancelled)
            func mean(_ r: LossResult) -> Double {
                let v = rows.filter { r.validPerSequence[$0] > 0 }.map { r.perSequenceMean[$0] }
                return v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count)
            }
            let t = mean(total), g = mean(gap)
            let onFull = try m.studentFull.map {
                mean(try LossScorer.score(teacher: m.teacherFull, student: $0, config: kl, isCancelled: isCancelled))
            }
            split = StudentSplit(
                total: t, contextGap: g, capacityGap: t - g, againstSimplifiedTeacher: mean(simplified), onFullContext: onFull)
        }
        return ContextGap(perExample: per, spread: spread, largest: Array(largest), student: split)
    }
}
