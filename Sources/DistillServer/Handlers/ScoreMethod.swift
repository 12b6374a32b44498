import DistillAnalysis
import DistillJSON
import DistillMath
import DistillProtocol
import DistillStore
import DistillTensor

/// distill/score: students against a teacher, on inline data, files or loaded names.
enum ScoreMethod {
    @Sendable static func handle(_ request: ScoreRequest, _ context: RequestContext) throws -> ScoreRequest.Response {
        if request.teacher.readsDataset { return try TextScoring.score(request, context) }
        let whole = try ModelResolution.resolve(request.teacher, context: context)
        let studentReferences = try request.students.get()
        var students = try studentReferences.map { try ModelResolution.resolve(try $0.model.get(), context: context) }
        let dataset = try request.dataset.get().map { try context.server.registry.dataset(named: $0) }
        let total = whole.outputs.examples
        let matching = dataset.map { d in match(teacher: whole, dataset: d) }
        var ids = try exampleIDs(request, teacher: whole, dataset: dataset, matching: matching)
        var config = try request.loss.get().config(examples: total, positions: whole.outputs.positions) { field in
            try datasetLabels(dataset!, teacher: whole, matching: matching!, field: field)
        }
        // A range is taken after ids and labels are known for the whole, so they stay global.
        let range = try request.range.get()?.resolve(examples: total)
        var teacher = whole
        if let range {
            teacher = try whole.examples(range, of: total)
            students = try students.map { try $0.examples(range, of: total) }
            ids = Array(ids[range])
            config.labels = config.labels.map { $0.rows(range) }
        }
        let conventions = try request.conventions.get()
        let worst = try request.worst.get()
        let perExample = try request.perExample.get()

        let studentCount = students.count
        let report: Scoring.Report
        var current = 0
        do {
            // Each student is validated against the teacher as it is scored.
            var reports: [Scoring.StudentReport] = []
            for (i, (name, student)) in zip(studentReferences.map(\.name), students).enumerated() {
                current = i
                let one = try Scoring.score(
                    teacher: config.name.needsTeacher ? teacher.outputs : nil,
                    students: [Scoring.Student(name: name, outputs: student.outputs)], config: config, ids: ids,
                    conventions: conventions, worst: worst,
                    isCancelled: { context.cancellation.isCancelled },
                    progress: { context.report((Double(i) + $0) / Double(studentCount), "scoring \(name)") })
                reports += one.students
            }
            report = Scoring.rank(reports, config: config)
        } catch let e as LossError {
            throw e.reply(teacher: teacher.site, student: students[current].site)
        }

        return ScoreRequest.Response(
            loss: config, teacher: teacher.summary,
            students: report.students.map { s in
                student(s, source: students[studentReferences.firstIndex { $0.name == s.name }!].source, perExample: perExample)
            },
            ranking: report.ranking, margin: report.margin,
            matching: matching.map(MatchingSummary.init), range: range.map { ($0, total) })
    }

    static func student(_ s: Scoring.StudentReport, source: String, perExample: Bool) -> ScoreRequest.Student {
        let r = s.result
        let e = r.extras
        return ScoreRequest.Student(
            name: s.name, loss: s.loss, source: source, validPositions: r.validPositions,
            values: r.aggregate == nil ? r.reduced : nil,
            perExample: perExample ? s.perExample.map { value($0, r) } : nil,
            spread: spread(s.spread), worst: s.worst.map { value($0, r) },
            top1Agreement: e.top1Agreement, top1AgreementRate: e.top1AgreementRate,
            teacherEntropy: e.meanTeacherEntropy, studentEntropy: e.meanStudentEntropy, crossEntropy: e.meanCrossEntropy,
            tail: e.tailPolicy.map {
                ScoreRequest.Tail(
                    policy: $0.rawValue, teacherMean: e.meanTeacherTailMass, teacherMax: e.maxTeacherTailMass,
                    studentMean: e.meanStudentTailMass, studentMax: e.maxStudentTailMass)
            },
            conventions: s.conventions.map {
                ScoreRequest.ConventionValue(
                    name: $0.convention.rawValue, value: $0.value, distilld: $0.distilld, explanation: $0.explanation)
            })
    }

    /// An example's value with the sum and count of its valid positions, which shards merge from.
    static func value(_ e: Scoring.ExampleLoss, _ r: LossResult) -> ExampleValue {
        ExampleValue(id: e.id, value: e.loss, sum: r.perSequenceSum[e.index], valid: r.validPerSequence[e.index])
    }

    static func spread(_ s: Spread) -> SpreadSummary {
        SpreadSummary(count: s.count, mean: s.mean, std: s.std, min: s.min, p50: s.p50, p90: s.p90, p99: s.p99, max: s.max)
    }

    // MARK: - Examples, ids and labels

    static func match(teacher: ResolvedModel, dataset: DatasetEntry) -> Matching {
        DistillStore.match(teacherIds: teacher.ids, dataset: dataset, teacherRows: teacher.outputs.examples)
    }

    /// Ids to report examples by: given ids, else the teacher's, else the dataset's
    /// matched ids, else row numbers "0", "1", ...
    static func exampleIDs(_ request: ScoreRequest, teacher: ResolvedModel, dataset: DatasetEntry?, matching: Matching?) throws
        -> [String]
    {
        let n = teacher.outputs.examples
        if let ids = try request.ids.get(), let field = request.idsField {
            guard ids.count == n else { throw field.fail("has \(ids.count) ids for \(n) examples") }
            return ids
        }
        if let ids = teacher.ids, ids.count == n { return ids }
        if let dataset, let matching {
            var ids = (0..<n).map(String.init)
            for pair in matching.pairs where pair.teacherRow < n && dataset.kind == .paired {
                ids[pair.teacherRow] = dataset.examples[pair.example].id
            }
            return ids
        }
        return (0..<n).map(String.init)
    }

    /// Hard labels from the dataset's `label` field: integers are output ids; strings
    /// are looked up in the teacher's vocabulary. One label per example (T = 1).
    static func datasetLabels(_ d: DatasetEntry, teacher: ResolvedModel, matching: Matching, field: Field) throws -> Tensor {
        let n = teacher.outputs.examples
        guard teacher.outputs.positions == 1 else {
            throw field.fail(
                "dataset labels give one label per example; the teacher has \(teacher.outputs.positions) positions per example")
        }
        var labels = [Int64](repeating: -100, count: n)
        let vocab = teacher.labels.map { Dictionary($0.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a }) }
        for pair in matching.pairs where d.kind == .paired {
            let example = d.examples[pair.example]
            switch example.label {
            case .integer(let i)?:
                labels[pair.teacherRow] = Int64(i)
            case .string(let s)?:
                guard let id = vocab?[s] else {
                    throw field.fail(
                        "example '\(example.id)' (line \(example.line)) has label \"\(s)\", which is not in the teacher's vocabulary")
                }
                labels[pair.teacherRow] = Int64(id)
            case nil:
                if let target = example.target, let id = vocab?[target] {
                    labels[pair.teacherRow] = Int64(id)
                }
            }
        }
        return Tensor(int64: labels, shape: [n, 1])
    }
}
