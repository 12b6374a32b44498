import DistillAnalysis
import DistillJSON
import DistillMath
import DistillModels
import DistillProtocol
import DistillStore
import DistillTensor
import Foundation

/// distill/diagnose's `behaviour`: which dataset a student learnt from, from how it behaves. The
/// student reads each example's full context x and its simplified x′, each followed by the
/// separator and the target, and its negative log-likelihood of the target tokens is taken both
/// ways; with a teacher, the teacher does the same, giving the context gap KL(p(·|x) ‖ p(·|x′)) at
/// every target token and the student's KL to the teacher reading either context. The verdict is
/// `Behaviour.judge`'s. Runs the models a part of the examples at a time, as teacher-forced scoring does.
enum BehaviourDiagnosis {
    static func run(
        _ b: DiagnoseRequest.Behaviour, dataset: DatasetEntry, listLimit: Int, context: RequestContext
    ) throws -> DiagnoseRequest.BehaviourResult {
        let registry = context.server.registry
        func reader(_ name: String, member: String, full: Bool) throws -> TextScoring.Reader {
            TextScoring.Reader(
                role: member, field: b.field.child(member) ?? b.field, name: name, model: try registry.modelForUse(named: name),
                addSpecial: true, readsFull: full)
        }
        var readers: [TextScoring.Reader] = []
        if let teacher = b.teacher {
            readers += [try reader(teacher, member: "teacher", full: true), try reader(teacher, member: "teacher", full: false)]
        }
        readers += [try reader(b.student, member: "student", full: true), try reader(b.student, member: "student", full: false)]
        let (studentFull, studentSimplified) = (readers.count - 2, readers.count - 1)
        try TextScoring.requireOneVocabulary(readers)
        let examples = dataset.examples
        let targets = try TextScoring.tokenize(&readers, examples: examples, prompt: b.prompt)

        let n = examples.count
        let positions = targets.map(\.count).max() ?? 0
        let V = readers[0].model.vocab
        let size = TextScoring.partSize(examples: n, positions: positions, vocab: V, readers: readers.count)
        let parts = (n + size - 1) / size
        let config = LossConfig(name: .forwardKL, reduction: .mean)
        var nll = [[Double]](repeating: [0, 0], count: n)
        // With a teacher: the gap (teacher x′), the student on x, the student on x′, each against the teacher on x.
        var results: [[LossResult]] = [[], [], []]
        for p in 0..<parts {
            if context.cancellation.isCancelled { throw CancellationError() }
            let range = (p * size)..<min(n, (p + 1) * size)
            var outputs: [ModelOutputs] = []
            for (r, reader) in readers.enumerated() {
                let (o, picked) = try TextScoring.run(reader, range: range, targets: targets, positions: positions)
                if b.teacher != nil { outputs.append(o) }
                if r == studentFull || r == studentSimplified {
                    for (k, i) in range.enumerated() {
                        nll[i][r == studentFull ? 0 : 1] = -picked[k].logprobs.reduce(0, +) / Double(targets[i].count)
                    }
                }
            }
            if b.teacher != nil {
                for (slot, other) in [1, 2, 3].enumerated() {
                    results[slot].append(
                        try LossScorer.score(
                            teacher: outputs[0], student: outputs[other], config: config,
                            isCancelled: { context.cancellation.isCancelled }))
                }
            }
            context.report(Double(p + 1) / Double(parts), "\(range.upperBound)/\(n) examples")
        }
        let joined = b.teacher == nil ? nil : results.map(LossResult.joined)
        let gaps = joined?[0].perSequenceMean
        let judgement = Behaviour.judge(advantages: nll.map { $0[1] - $0[0] }, gaps: gaps)
        // The student reading x′ against the teacher reading x: context gap + capacity gap.
        let kls = joined?[2].perSequenceMean
        let rows = examples.indices.map { i in
            DiagnoseRequest.BehaviourResult.Example(
                id: examples[i].id, nllFull: nll[i][0], nllSimplified: nll[i][1], contextGap: gaps?[i], kl: kls?[i])
        }
        /// A deciding example with the split at each of its target tokens, when there is a teacher.
        func withTokens(_ i: Int) -> DiagnoseRequest.BehaviourResult.Example {
            var row = rows[i]
            guard let joined else { return row }
            let model = readers[0].model
            row.tokens = targets[i].indices.map { j in
                DiagnoseRequest.BehaviourResult.Token(
                    text: (try? model.decode([targets[i][j]], skipSpecial: false)) ?? model.piece(targets[i][j]), position: j,
                    contextGap: joined[0].perPosition[i * positions + j], kl: joined[2].perPosition[i * positions + j])
            }
            return row
        }
        let tokens = targets.reduce(0) { $0 + $1.count }
        func meanNLL(_ side: Int) -> Double {
            zip(nll, targets).reduce(0) { $0 + $1.0[side] * Double($1.1.count) } / Double(max(1, tokens))
        }
        var result = DiagnoseRequest.BehaviourResult(
            student: b.student, teacher: b.teacher, separator: b.prompt.separator, targetTokens: tokens, nllFull: meanNLL(0),
            nllSimplified: meanNLL(1), klFull: joined?[1].aggregate, klSimplified: joined?[2].aggregate,
            meanContextGap: joined?[0].aggregate, verdict: judgement.verdict.rawValue, confidence: judgement.confidence,
            pValue: judgement.pValue, positive: judgement.positive, negative: judgement.negative,
            evidence: evidence(judgement, deciding: judgement.positive + judgement.negative, hasTeacher: b.teacher != nil),
            deciding: judgement.deciding.prefix(listLimit).map(withTokens), examples: Array(rows.prefix(listLimit)))
        result.prompt = b.prompt
        return result
    }

    static func evidence(_ j: Behaviour.Judgement, deciding: Int, hasTeacher: Bool) -> String {
        let which = hasTeacher ? "of the \(deciding) examples with the largest context gap" : "of the \(deciding) examples"
        let counts =
            "In \(j.positive) \(which) the student predicts the target better from the full context, in \(j.negative) "
            + "better from the simplified one (sign test p = \(String(format: "%.3g", j.pValue)))"
        switch j.verdict {
        case .full:
            return counts
                + ": it behaves as a student trained on the full contexts (D), not on the simplified dataset D′ it should have seen."
        case .simplified:
            return counts + ": it behaves as a student trained on the simplified contexts (D′), as it should."
        case .undecided:
            return counts + ": not enough to tell which dataset it learnt from."
        }
    }
}
