import DistillAnalysis
import DistillJSON
import DistillMath
import DistillProtocol
import DistillStore
import DistillText

/// distill/diagnose: which dataset a student really saw, the health of the pairs,
/// and how much the simplification takes away from the teacher.
enum DiagnoseMethod {
    @Sendable static func handle(_ request: DiagnoseRequest, _ context: RequestContext) throws -> DiagnoseRequest.Response {
        let dataset = try context.server.registry.dataset(named: request.dataset)
        guard dataset.kind == .paired else {
            throw request.datasetField.fail(
                "'\(dataset.name)' is an input list; diagnose needs a paired dataset (full and simplified inputs)")
        }
        let inputs = try request.inputs.get().map { try resolveInputs($0, context: context) }
        let threshold = try request.nearThreshold.get()
        let listLimit = try request.maxExamples.get()
        var models: Diagnosis.Models? = nil
        if let gap = try request.contextGap.get() {
            let full = try ModelResolution.resolve(gap.teacherFull, context: context)
            let simplified = try ModelResolution.resolve(try gap.teacherSimplified.get(), context: context)
            let student = try gap.student.get().map { try ModelResolution.resolve($0, context: context) }
            let studentFull = try gap.studentFull.get().map { try ModelResolution.resolve($0, context: context) }
            if let given = studentFull, student == nil {
                throw given.field.fail("needs params.contextGap.student (the outputs on the simplified inputs) too")
            }
            for other in [simplified] + [student, studentFull].compactMap({ $0 }) {
                try other.requireSameShape(as: full)
            }
            models = Diagnosis.Models(
                teacherFull: full.outputs, teacherSimplified: simplified.outputs, student: student?.outputs,
                studentFull: studentFull?.outputs, ids: full.ids)
        }
        let report: Diagnosis.Report
        do {
            report = try Diagnosis.run(
                dataset: dataset, inputs: inputs, nearThreshold: threshold, models: models, listLimit: listLimit,
                isCancelled: { context.cancellation.isCancelled }, progress: { context.report($0, "diagnosing") })
        } catch let e as LossError {
            throw e.reply(summarizedAt: "params.contextGap")
        }
        var reply = response(report, dataset: dataset)
        if let behaviour = try request.behaviour.get() {
            reply.behaviour = try BehaviourDiagnosis.run(behaviour, dataset: dataset, listLimit: listLimit, context: context)
        }
        return reply
    }

    /// Training inputs: a loaded input list, a file, or an inline list of strings.
    static func resolveInputs(_ inputs: DiagnoseRequest.Inputs, context: RequestContext) throws -> [InputRecord] {
        switch inputs.source {
        case .loaded(let name):
            let d = try context.server.registry.dataset(named: name)
            guard d.kind == .inputs else { throw inputs.field.fail("'\(name)' is a paired dataset; give an input list") }
            return d.inputs
        case .inline(let texts):
            return texts.enumerated().map { InputRecord(text: $1, line: $0 + 1) }
        case .file(let path):
            return try inputsFile(path, field: inputs.field, context: context)
        }
    }

    /// An input list in a file (`{"path": ..., "format": ..., "options": ...}`), builtins included,
    /// loaded through the registry as an anonymous entry.
    static func inputsFile(_ path: String, field: Field, context: RequestContext) throws -> [InputRecord] {
        let file = try DatasetFile(field)
        return try storeCall(under: field.path) { try context.server.registry.loadAnonymousDataset(file, kind: .inputs) }.inputs
    }

    static func response(_ r: Diagnosis.Report, dataset: DatasetEntry) -> DiagnoseRequest.Response {
        let uri = dataset.source.map { Diagnostic.fileURI($0.path) }
        return DiagnoseRequest.Response(
            dataset: dataset.name, summary: r.summary, classification: r.classification,
            classified: r.classified.map {
                DiagnoseRequest.ClassifiedInput(
                    index: $0.index, line: $0.line, kind: $0.kind, similarity: $0.similarity, method: $0.method, exampleId: $0.exampleId)
            },
            findings: r.integrity.map {
                DiagnoseRequest.IntegrityFinding($0, exampleIds: $0.exampleIndices.map { dataset.examples[$0].id })
            },
            stats: r.stats,
            contextGap: r.contextGap.map { g in
                DiagnoseRequest.ContextGapResult(
                    perExample: g.perExample.map { ExampleValue(id: $0.id, value: $0.kl) }, spread: ScoreMethod.spread(g.spread),
                    largest: g.largest.map { ExampleValue(id: $0.id, value: $0.kl) },
                    student: g.student.map {
                        DiagnoseRequest.StudentSplit(
                            total: $0.total, contextGap: $0.contextGap, capacityGap: $0.capacityGap,
                            againstSimplifiedTeacher: $0.againstSimplifiedTeacher, onFullContext: $0.onFullContext)
                    })
            },
            diagnostics: r.diagnostics.map {
                Diagnostic(
                    code: $0.code, severity: $0.severity, message: $0.message, exampleIds: $0.exampleIds, lines: $0.lines,
                    data: $0.data, uri: uri)
            })
    }
}
