import DistillAnalysis
import DistillJSON
import DistillMath
import DistillProtocol
import DistillStore
import DistillTensor

/// distill/score: students against a teacher, on inline data, files or loaded names.
enum ScoreMethod {
    static let keys: Set<String> = ["teacher", "students", "dataset", "loss", "ids", "conventions", "worst", "perExample", "workDoneToken"]

    @Sendable static func handle(_ context: RequestContext) throws -> JSON {
        let params = try context.fields()
        try params.rejectUnknownKeys(keys)
        let teacherField = try params.required("teacher")
        let teacher = try ModelResolution.resolve(teacherField, context: context)
        let studentsField = try params.required("students")
        let studentMembers = try studentsField.members()
        guard !studentMembers.isEmpty else { throw studentsField.fail("names no student") }
        let students = try studentMembers.map { try ModelResolution.resolve($0.value, context: context) }
        let dataset = try params.child("dataset").map { f in
            try context.server.registry.dataset(named: try f.string())
        }
        let n = teacher.outputs.examples
        let matching = dataset.map { d in match(teacher: teacher, dataset: d) }
        let ids = try exampleIDs(params.child("ids"), teacher: teacher, dataset: dataset, matching: matching)
        let config = try LossDecoding.config(
            params.child("loss"), examples: n, positions: teacher.outputs.positions,
            datasetLabels: dataset.map { d in
                { try datasetLabels(d, teacher: teacher, matching: matching!, field: params.child("loss")!.child("labels")!) }
            })
        let conventions = try (params.child("conventions")?.array() ?? []).map {
            Convention(rawValue: try $0.oneOf(Convention.allCases.map(\.rawValue)))!
        }
        let worst = try params.child("worst")?.int(min: 0, max: 1000) ?? 5
        let perExample = try params.child("perExample")?.bool() ?? true

        let report: Scoring.Report
        var current = 0
        do {
            // Each student is validated against the teacher as it is scored.
            var reports: [Scoring.StudentReport] = []
            for (i, (name, student)) in zip(studentMembers.map(\.key), students).enumerated() {
                current = i
                let one = try Scoring.score(
                    teacher: config.name.needsTeacher ? teacher.outputs : nil,
                    students: [Scoring.Student(name: name, outputs: student.outputs)], config: config, ids: ids,
                    conventions: conventions, worst: worst,
                    isCancelled: { context.cancellation.isCancelled },
                    progress: { context.report((Double(i) + $0) / Double(students.count), "scoring \(name)") })
                reports += one.students
            }
            report = Scoring.rank(reports, config: config)
        } catch let e as LossError {
            throw ModelResolution.error(e, teacher: teacher, student: students[current])
        }

        let result: JSON = ["loss": LossDecoding.echo(config), "teacher": teacher.sourceJSON]
        let list = JSON.array()
        for s in report.students {
            list.append(
                studentJSON(s, model: students[studentMembers.firstIndex { $0.key == s.name }!], config: config, perExample: perExample))
        }
        result["students"] = list
        result["ranking"] = JSON.array(report.ranking)
        result["best"] = JSON(report.ranking[0])
        if let margin = report.margin {
            let best = report.students.first { $0.name == report.ranking[0] }!.loss
            result["margin"] = ["absolute": JSON(margin), "relative": best > 0 && margin.isFinite ? JSON(margin / best) : .null]
        }
        if let matching { result["matching"] = DatasetMatching(matching).json }
        return result
    }

    static func studentJSON(_ s: Scoring.StudentReport, model: ResolvedModel, config: LossConfig, perExample: Bool) -> JSON {
        let r = s.result
        let o: JSON = ["name": JSON(s.name), "loss": JSON(s.loss), "source": JSON(model.source), "validPositions": JSON(r.validPositions)]
        if r.aggregate == nil { o["values"] = JSON.array(r.reduced) }
        if perExample {
            o["perExample"] = JSON.array(s.perExample.map { ["id": JSON($0.id), "loss": JSON($0.loss)] as JSON })
        }
        o["spread"] = spreadJSON(s.spread)
        o["worst"] = JSON.array(s.worst.map { ["id": JSON($0.id), "loss": JSON($0.loss)] as JSON })
        o["top1Agreement"] = ["count": JSON(r.extras.top1Agreement), "rate": JSON(r.extras.top1AgreementRate)]
        let e = r.extras
        o["entropy"] = [
            "teacher": e.meanTeacherEntropy.map { JSON($0) } ?? .null,
            "student": e.meanStudentEntropy.map { JSON($0) } ?? .null,
            "crossEntropy": e.meanCrossEntropy.map { JSON($0) } ?? .null,
        ]
        if let policy = e.tailPolicy {
            o["tail"] = [
                "policy": JSON(policy.rawValue),
                "teacherMass": ["mean": JSON(e.meanTeacherTailMass), "max": JSON(e.maxTeacherTailMass)],
                "studentMass": ["mean": JSON(e.meanStudentTailMass), "max": JSON(e.maxStudentTailMass)],
            ]
        }
        if !s.conventions.isEmpty {
            o["conventions"] = JSON.array(
                s.conventions.map {
                    [
                        "name": JSON($0.convention.rawValue), "value": JSON($0.value), "distilld": JSON($0.distilld),
                        "explanation": JSON($0.explanation),
                    ] as JSON
                })
        }
        return o
    }

    static func spreadJSON(_ s: Spread) -> JSON {
        [
            "count": JSON(s.count), "mean": JSON(s.mean), "std": JSON(s.std), "min": JSON(s.min), "p50": JSON(s.p50),
            "p90": JSON(s.p90), "p99": JSON(s.p99), "max": JSON(s.max),
        ]
    }

    // MARK: - Examples, ids and labels

    static func match(teacher: ResolvedModel, dataset: DatasetEntry) -> Matching {
        DistillStore.match(teacherIds: teacher.ids, dataset: dataset, teacherRows: teacher.outputs.examples)
    }

    /// Ids to report examples by: given ids, else the teacher's, else the dataset's
    /// matched ids, else row numbers "0", "1", ...
    static func exampleIDs(_ field: Field?, teacher: ResolvedModel, dataset: DatasetEntry?, matching: Matching?) throws -> [String] {
        let n = teacher.outputs.examples
        if let field {
            let ids = try field.array().map { f -> String in
                if let i = f.json.intValue { return String(i) }
                return try f.string()
            }
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
