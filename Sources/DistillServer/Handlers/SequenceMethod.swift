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
    @Sendable static func handle(_ request: SequenceRequest, _ context: RequestContext) throws -> SequenceRequest.Response {
        let teacher = try probabilities(request.teacher, request, field: request.teacherField, context: context)
        let renormalize = request.renormalize
        var rows: [(name: String, result: SequenceLevelResult, q: [Double])] = []
        for student in request.students {
            let q = try probabilities(try student.source.get(), request, field: student.field, context: context)
            guard q.count == teacher.count else {
                let path = student.field.path
                throw ResponseError(
                    code: .shapeMismatch, message: "\(path) has \(q.count) candidates but the teacher has \(teacher.count)",
                    data: ["field": JSON(path), "teacherCandidates": JSON(teacher.count), "studentCandidates": JSON(q.count)])
            }
            do {
                rows.append((student.name, try SequenceLevel.loss(teacher: teacher, student: q, renormalize: renormalize), q))
            } catch let e as LossError {
                throw e.reply(teacherField: request.teacherField, studentField: student.field)
            }
        }
        let ct = rows[0].result.teacherCoverage
        let nt = renormalize ? ct : 1
        let students = rows.map { row in
            let r = row.result
            let ns = renormalize ? r.studentCoverage : 1
            let candidates = teacher.indices.map { i -> SequenceRequest.Candidate in
                let p = teacher[i] / nt, q = row.q[i] / ns
                let term: Double = p == 0 ? 0 : (q == 0 ? .infinity : p * (log(p) - log(q)))
                return SequenceRequest.Candidate(index: i, p: p, q: q, klTerm: term, label: request.labels?[i])
            }
            return SequenceRequest.StudentResult(
                name: row.name, crossEntropy: r.crossEntropy, kl: r.klOnSet, teacherEntropy: r.teacherEntropyOnSet,
                studentCoverage: r.studentCoverage, candidates: candidates)
        }
        return SequenceRequest.Response(
            teacherCoverage: ct, renormalized: renormalize, students: students,
            ranking: Scoring.rankedNames(rows.map { ($0.name, $0.result.crossEntropy) }))
    }

    /// A side's probability of each candidate: as given, or run through a loaded model (one batched
    /// pass over prompt + candidate for every candidate).
    static func probabilities(
        _ source: SequenceRequest.Source, _ request: SequenceRequest, field: Field, context: RequestContext
    ) throws -> [Double] {
        switch source {
        case .values(let v):
            return v
        case .model(let name, let prompt, let addSpecial):
            let model = try context.server.registry.modelForUse(named: name)
            let candidates = request.candidates ?? []
            let promptIds = try modelCall { try model.encodePrompt(prompt, addSpecial: addSpecial, field: field.path + ".prompt") }
            guard !promptIds.isEmpty else { throw field.fail("its prompt gives no tokens; a prompt needs at least one") }
            let continuations = try candidates.enumerated().map { i, text in
                let ids = try modelCall { try model.encode(text, addSpecial: false, field: "params.candidates[\(i)]").ids }
                guard !ids.isEmpty else {
                    throw ResponseError.invalidParams(field: "params.candidates[\(i)]", "gives no tokens")
                }
                try modelCall { try model.checkTokens(promptIds + ids, field: "params.candidates[\(i)]") }
                return ids
            }
            let rows = try modelCall { try model.logProbabilities(continuations.map { promptIds + $0.dropLast() }) }
            let V = model.vocab
            return zip(continuations, rows).map { ids, logp in
                var sum = 0.0
                for (j, id) in ids.enumerated() { sum += Double(logp[(promptIds.count - 1 + j) * V + id]) }
                return exp(sum)
            }
        }
    }
}
