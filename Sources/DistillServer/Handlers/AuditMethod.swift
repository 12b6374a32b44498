import DistillAnalysis
import DistillMath
import DistillProtocol
import DistillTensor

/// distill/audit: the cost of truncating a dense teacher to its top k (`TopKAudit`).
enum AuditMethod {
    @Sendable static func handle(_ request: AuditRequest, _ context: RequestContext) throws -> AuditRequest.Response {
        let teacher = try ModelResolution.resolve(request.teacher, context: context)
        let student = try ModelResolution.resolve(try request.student.get(), context: context)
        for side in [teacher, student] where side.outputs.isTopK {
            throw side.field.fail("is a top-k model; the audit needs dense outputs (all of the vocabulary) on both sides")
        }
        try student.requireSameShape(as: teacher)
        let report: TopKAudit.Report
        do {
            report = try TopKAudit.run(
                teacher: teacher.outputs, student: student.outputs, ks: request.ks, temperature: request.temperature,
                bound: request.bound, isCancelled: { context.cancellation.isCancelled },
                progress: { context.report($0, "auditing") })
        } catch let e as LossError {
            throw e.reply(teacher: teacher.site, student: student.site)
        }
        return .init(
            temperature: request.temperature, bound: request.bound, exact: report.exact, positions: report.positions,
            levels: report.levels.map { l in
                .init(
                    k: l.k, tailMean: l.tailMean, tailMax: l.tailMax, studentOutsideMean: l.studentOutsideMean,
                    studentOutsideMax: l.studentOutsideMax,
                    policies: [
                        ("renormalize", policy(l.renormalize)), ("tail_bucket", policy(l.tailBucket)), ("truncate", policy(l.truncate)),
                    ]
                )
            },
            smallestK: report.smallestK)
    }

    static func policy(_ p: TopKAudit.PolicyResult) -> AuditRequest.Policy {
        .init(kl: p.kl, error: p.error, negativePositions: p.negativePositions)
    }
}
