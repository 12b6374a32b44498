import DistillAnalysis
import DistillJSON
import DistillMath
import DistillProtocol

#if canImport(Glibc)
    import Glibc
#endif

/// distill/sequence: the sequence-level loss on an enumerated candidate set,
/// −Σ_y Pr^t(y|x) log Pr^s(y|x') and the KL restricted to the set, with the
/// teacher mass the set covers.
enum SequenceMethod {
    @Sendable static func handle(_ context: RequestContext) throws -> JSON {
        let params = try context.fields()
        try params.rejectUnknownKeys(["teacher", "students", "labels", "renormalize", "workDoneToken"])
        let teacherField = try params.required("teacher")
        let teacher = try probabilities(teacherField)
        let studentsField = try params.required("students")
        let members = try studentsField.members()
        guard !members.isEmpty else { throw studentsField.fail("names no student") }
        let labels = try params.child("labels").map { try $0.array().map { try $0.string() } }
        if let labels, labels.count != teacher.count {
            throw params.child("labels")!.fail("has \(labels.count) labels for \(teacher.count) candidates")
        }
        let renormalize = try params.child("renormalize")?.bool() ?? false
        var rows: [(name: String, result: SequenceLevelResult, q: [Double])] = []
        for m in members {
            let q = try probabilities(m.value)
            guard q.count == teacher.count else {
                throw ResponseError(
                    code: .shapeMismatch, message: "\(m.value.path) has \(q.count) candidates but the teacher has \(teacher.count)",
                    data: ["field": JSON(m.value.path), "teacherCandidates": JSON(teacher.count), "studentCandidates": JSON(q.count)])
            }
            do {
                rows.append((m.key, try SequenceLevel.loss(teacher: teacher, student: q, renormalize: renormalize), q))
            } catch let e as LossError {
                let field = e.side == .teacher ? teacherField : m.value
                var path = field.path
                if let i = e.vocabIndex { path += "[\(i)]" }
                throw ResponseError(code: .invalidParams, message: "\(path): \(e.message)", data: ["field": JSON(path)])
            }
        }
        let ct = rows[0].result.teacherCoverage
        let nt = renormalize ? ct : 1
        let students = JSON.array(
            rows.map { row in
                let r = row.result
                let ns = renormalize ? r.studentCoverage : 1
                let per = JSON.array(
                    teacher.indices.map { i -> JSON in
                        let p = teacher[i] / nt, q = row.q[i] / ns
                        let term: Double = p == 0 ? 0 : (q == 0 ? .infinity : p * (log(p) - log(q)))
                        let o: JSON = ["index": JSON(i), "p": JSON(p), "q": JSON(q), "klTerm": JSON(term)]
                        if let labels { o["label"] = JSON(labels[i]) }
                        return o
                    })
                return [
                    "name": JSON(row.name), "crossEntropy": JSON(r.crossEntropy), "kl": JSON(r.klOnSet),
                    "teacherEntropy": JSON(r.teacherEntropyOnSet), "studentCoverage": JSON(r.studentCoverage),
                    "candidates": per,
                ] as JSON
            })
        let ranking = Scoring.rankedNames(rows.map { ($0.name, $0.result.crossEntropy) })
        return [
            "teacherCoverage": JSON(ct), "renormalized": JSON(renormalize), "students": students,
            "ranking": JSON.array(ranking), "best": JSON(ranking[0]),
        ]
    }

    /// `[p, ...]`, `{"probs": [...]}` or `{"logprobs": [...]}` (sequence probabilities are
    /// often far below float range as probabilities, so log-probabilities are read in double).
    static func probabilities(_ field: Field) throws -> [Double] {
        if field.json.isArray { return try field.array().map { try $0.double() } }
        _ = try field.object()
        try field.rejectUnknownKeys(["probs", "logprobs"])
        if let p = field.child("probs") {
            if field.child("logprobs") != nil { throw field.fail("give probs or logprobs, not both") }
            return try p.array().map { try $0.double() }
        }
        let lp = try field.required("logprobs").array().map { f -> Double in
            guard let v = f.json.doubleValue, !v.isNaN else { throw f.fail("must be a number or \"-Infinity\"") }
            guard v <= 1e-9 else { throw f.fail("a log-probability must be ≤ 0, got \(v)") }
            return v
        }
        return lp.map { exp($0) }
    }
}
