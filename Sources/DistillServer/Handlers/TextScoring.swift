import DistillAnalysis
import DistillJSON
import DistillMath
import DistillModels
import DistillProtocol
import DistillStore
import DistillTensor
import Foundation

/// distill/score with models that read the dataset (teacher-forced scoring, context
/// distillation): the teacher reads each example's full context, each student its simplified one,
/// formatted by `params.prompt` (a separator, a template, or each model's own chat template:
/// `PromptRenderer`) and followed by the target, and the loss is taken at every target token,
/// through the same kernels as every other score.
///
/// The target is tokenised once per model without special tokens and appended to the context's
/// ids, so every model is scored on the same target tokens (models whose tokenizers split a
/// target differently are refused: aligning tokenizers is later work). The distributions are
/// made a part of the examples at a time (`Scoring.scoreInParts`), so a dataset of any size is
/// scored in bounded memory with the report one pass over all of it would give.
enum TextScoring {
    /// A part holds at most this many bytes of distributions (teacher and students together).
    static let partBytes = 256 << 20
    /// A part holds at most this many examples, however short: a cancelled score keeps the parts
    /// it finished (`Scoring.PartialScore`), so they should finish often, and a batch of 32
    /// already keeps the matrix products busy.
    static let partExamples = 32

    /// One model as it reads the dataset.
    struct Reader {
        /// "teacher" or the student's name, for messages.
        let role: String
        let field: Field
        let name: String
        let model: LanguageModel
        /// Whether its contexts get the tokenizer's special tokens (the reference's `addSpecial`).
        let addSpecial: Bool
        /// Whether it reads the full contexts (else the simplified ones).
        var readsFull: Bool
        /// Each example's context ids (the formatted context, with the model's special tokens unless a chat template gave them).
        var contexts: [[Int]] = []
    }

    static func score(_ request: ScoreRequest, _ context: RequestContext) throws -> ScoreRequest.Response {
        let registry = context.server.registry
        guard let datasetName = try request.dataset.get() else {
            throw request.teacher.field.fail(
                "a model with no inputs reads the request's dataset, and none was given: add params.dataset, "
                    + "or give the model texts or tokens")
        }
        let dataset = try registry.dataset(named: datasetName)
        guard dataset.kind == .paired else {
            throw ResponseError.invalidParams(
                field: datasetField, "'\(datasetName)' is an input list; teacher-forced scoring needs pairs with targets")
        }
        let prompt = try request.prompt.get()
        let studentReferences = try request.students.get()
        var readers = [try reader("teacher", request.teacher, context, readsFull: true)]
        for s in studentReferences {
            let reference = try s.model.get()
            guard reference.readsDataset else {
                throw reference.field.fail(
                    "with a teacher model reading the dataset, each student is a model reading it too: {\"model\": NAME}")
            }
            readers.append(try reader(s.name, reference, context, readsFull: false))
        }
        let teacher = readers[0].model
        try requireOneVocabulary(readers)

        // Only the examples of params.range, if given: a shard of the dataset, with its global ids.
        let whole = dataset.examples.count
        let selected = try request.range.get()?.resolve(examples: whole)
        let examples = selected.map { Array(dataset.examples[$0]) } ?? dataset.examples
        // Tokenise everything first: every error is found before any model runs.
        let targets = try tokenize(&readers, examples: examples, prompt: prompt)

        let n = examples.count
        let positions = targets.map(\.count).max() ?? 0
        let V = teacher.vocab
        let size = partSize(examples: n, positions: positions, vocab: V, readers: readers.count)
        let parts = (n + size - 1) / size
        // The targets are the hard labels (`labels: "dataset"`); -100 past a target's end.
        var labels = [Int64](repeating: -100, count: n * positions)
        for (i, t) in targets.enumerated() { for (j, id) in t.enumerated() { labels[i * positions + j] = Int64(id) } }
        let config = try request.loss.get().config(examples: n, positions: positions) { _ in
            Tensor(int64: labels, shape: [n, positions])
        }
        let ids = examples.map(\.id)
        let started = Date()
        // Per model, per example: log p(target[j]) and the argmax at each target position.
        var targetLogprobs = readers.map { _ in [[Double]](repeating: [], count: n) }
        var argmax = readers.map { _ in [[Int]](repeating: [], count: n) }
        // Cancelled after some parts, the result is the one over the examples they scored.
        let report: Scoring.Report
        var done = n
        do {
            report = try Scoring.scoreInParts(
                parts: parts,
                part: { p in
                    let range = (p * size)..<min(n, (p + 1) * size)
                    var outputs: [ModelOutputs] = []
                    for (r, reader) in readers.enumerated() {
                        let (o, picked) = try run(reader, range: range, targets: targets, positions: positions)
                        outputs.append(o)
                        for (k, i) in range.enumerated() {
                            targetLogprobs[r][i] = picked[k].logprobs
                            argmax[r][i] = picked[k].argmax
                        }
                    }
                    let part = Tensor(
                        int64: Array(labels[(range.lowerBound * positions)..<(range.upperBound * positions)]),
                        shape: [range.count, positions])
                    return (config.name.needsTeacher ? outputs[0] : nil, Array(outputs.dropFirst()), part)
                },
                names: studentReferences.map(\.name), vocab: V, config: config, ids: ids, conventions: try request.conventions.get(),
                worst: try request.worst.get(), isCancelled: { context.cancellation.isCancelled },
                progress: { fraction in
                    let done = Int((fraction * Double(n)).rounded())
                    let seconds = Date().timeIntervalSince(started)
                    let tokens = targets.prefix(done).reduce(0) { $0 + $1.count }
                    let rate = seconds > 0 ? Double(tokens) / seconds : 0
                    context.report(fraction, "\(done)/\(n) examples, \(Int(rate)) target tokens/s")
                })
        } catch let e as LossError {
            throw ResponseError.invalidParams(field: "params.loss", "\(e)")
        } catch let partial as Scoring.PartialScore {
            report = partial.report
            done = partial.examplesDone
        }
        let perExampleWanted = try request.perExample.get()
        let response = ScoreRequest.Response(
            loss: config,
            teacher: ModelSummary(source: "model '\(readers[0].name)'", examples: done, positions: positions, vocab: V, kind: .logprobs),
            students: report.students.map { s in
                let r = 1 + studentReferences.firstIndex { $0.name == s.name }!
                var student = ScoreMethod.student(s, source: "model '\(readers[r].name)'", perExample: perExampleWanted)
                student.worstTokens = s.worst.map { w in
                    let i = w.index
                    let tokens = targets[i].indices.map { j in
                        ScoreRequest.WorstTokens.Token(
                            text: (try? teacher.decode([targets[i][j]], skipSpecial: false)) ?? teacher.piece(targets[i][j]),
                            position: j, loss: s.result.perPosition[i * positions + j], teacher: targetLogprobs[0][i][j],
                            student: targetLogprobs[r][i][j], agree: argmax[0][i][j] == argmax[r][i][j])
                    }
                    let worst = tokens.sorted { $0.loss > $1.loss || ($0.loss == $1.loss && $0.position < $1.position) }
                    return ScoreRequest.WorstTokens(
                        id: w.id, target: examples[i].target ?? "", tokens: Array(worst.prefix(ScoreRequest.WorstTokens.maxTokens)))
                }
                return student
            },
            ranking: report.ranking, margin: report.margin, matching: nil,
            text: ScoreRequest.TextRun(
                prompt: prompt, examples: done, targetTokens: targets.prefix(done).reduce(0) { $0 + $1.count }, positions: positions,
                teacherContextTokens: readers[0].contexts.prefix(done).reduce(0) { $0 + $1.count },
                studentContextTokens: readers.dropFirst().map { ($0.role, $0.contexts.prefix(done).reduce(0) { $0 + $1.count }) }),
            range: selected.map { ($0, whole) })
        guard done == n else { throw cancelled(response, examplesDone: done, of: n) }
        return response
    }

    /// The -32800 of a score cancelled after some of its parts: `data.partial` is the result over
    /// the examples they scored, marked partial in itself too, so that it cannot be taken for a
    /// whole result even once taken out of the error.
    static func cancelled(_ result: ScoreRequest.Response, examplesDone k: Int, of n: Int) -> ResponseError {
        var result = result
        result.partial = ScoreRequest.Partial(examplesDone: k, examples: n)
        return ResponseError(
            code: .requestCancelled, message: "Request cancelled after \(k) of \(n) examples; data.partial is their result",
            data: ["partial": result.json, "examplesDone": JSON(k), "examples": JSON(n)])
    }

    static let datasetField = "params.dataset"

    /// Every example's target ids (by the first reader's tokenizer) and each reader's context ids;
    /// refuses, naming the example, a missing or empty target, a target another reader splits
    /// differently, and a context and target longer than a reader's window.
    static func tokenize(_ readers: inout [Reader], examples: [Example], prompt: PromptFormat) throws -> [[Int]] {
        let first = readers[0].model
        var targets: [[Int]] = []
        for e in examples {
            guard let target = e.target, !target.isEmpty else {
                throw ResponseError.invalidParams(
                    field: datasetField,
                    "example '\(e.id)' (line \(e.line)) has no target; teacher-forced scoring needs a target for every example",
                    extra: [("example", JSON(e.id))])
            }
            let ids = try modelCall { try first.encode(target, addSpecial: false, field: datasetField).ids }
            guard !ids.isEmpty else {
                throw ResponseError.invalidParams(
                    field: datasetField, "example '\(e.id)': the target gives no tokens", extra: [("example", JSON(e.id))])
            }
            targets.append(ids)
        }
        for r in readers.indices {
            let reader = readers[r]
            let sameTokenizer = reader.model === first
            let renderer = try PromptRenderer(prompt, model: reader.model, name: reader.name)
            let addSpecial = renderer.addSpecial(reader.addSpecial)
            for (i, e) in examples.enumerated() {
                let text = try renderer.context(e, readsFull: reader.readsFull)
                let ids = try modelCall { try reader.model.encodePrompt(text, addSpecial: addSpecial, field: datasetField) }
                if !sameTokenizer {
                    let own = try modelCall { try reader.model.encode(e.target!, addSpecial: false, field: datasetField).ids }
                    guard own == targets[i] else {
                        throw ResponseError(
                            code: .shapeMismatch,
                            message: "\(reader.field.path): model '\(reader.name)' splits example '\(e.id)''s target into "
                                + "\(own.count) tokens where '\(readers[0].name)''s tokenizer gives \(targets[i].count) (or other ids); "
                                + "both must read the same target tokens",
                            data: ["field": JSON(reader.field.path), "example": JSON(e.id)])
                    }
                }
                let total = ids.count + targets[i].count - 1
                if let limit = reader.model.contextLength, total > limit {
                    throw ResponseError.invalidParams(
                        field: datasetField,
                        "example '\(e.id)': \(reader.role == "teacher" ? "the teacher" : "'\(reader.role)'") "
                            + "'\(reader.name)' would read \(ids.count) context and \(targets[i].count) target tokens, "
                            + "\(total) in all, more than its window of \(limit)",
                        extra: [("example", JSON(e.id)), ("tokens", JSON(total)), ("window", JSON(limit))])
                }
                readers[r].contexts.append(ids)
            }
        }
        return targets
    }

    /// Refuses readers whose vocabulary differs from the first's (1003, naming both tokenizers).
    static func requireOneVocabulary(_ readers: [Reader]) throws {
        let first = readers[0]
        for r in readers.dropFirst() where r.model.vocab != first.model.vocab {
            throw ResponseError(
                code: .shapeMismatch,
                message: "\(r.field.path): model '\(r.name)' has a vocabulary of \(r.model.vocab) (\(tokenizerName(r.model))) "
                    + "but '\(first.name)' has \(first.model.vocab) (\(tokenizerName(first.model))); "
                    + "scoring across different vocabularies needs aligned tokenizers, which distilld does not do yet",
                data: [
                    "field": JSON(r.field.path), "teacherVocab": JSON(first.model.vocab), "studentVocab": JSON(r.model.vocab),
                    "teacherTokenizer": JSON(tokenizerName(first.model)), "studentTokenizer": JSON(tokenizerName(r.model)),
                ])
        }
    }

    /// How many examples a part holds: as many as keep `readers` × positions × vocabulary floats
    /// under `partBytes`, at least one and at most `partExamples`.
    static func partSize(examples n: Int, positions: Int, vocab: Int, readers: Int) -> Int {
        let perExample = positions * vocab * MemoryLayout<Float>.stride * readers
        return max(1, min(n, partExamples, partBytes / max(1, perExample)))
    }

    static func reader(_ role: String, _ reference: ModelReference, _ context: RequestContext, readsFull: Bool) throws -> Reader {
        guard case .running(let name, _, let addSpecial) = reference.source else { preconditionFailure("not a model reference") }
        return Reader(
            role: role, field: reference.field, name: name, model: try context.server.registry.modelForUse(named: name),
            addSpecial: addSpecial, readsFull: readsFull)
    }

    /// One batched pass of `reader`'s model over `range`'s examples, each reading its context and
    /// its target but the last token; per example, the log-probability rows that predict the
    /// target's tokens ([target length, V] row-major: row j is log p(· | context, target[..<j])).
    static func targetRows(_ reader: Reader, range: Range<Int>, targets: [[Int]]) throws -> [[Float]] {
        let rows = try modelCall { try reader.model.logProbabilities(range.map { reader.contexts[$0] + targets[$0].dropLast() }) }
        let V = reader.model.vocab
        return zip(range, rows).map { i, all in
            let first = reader.contexts[i].count - 1
            return Array(all[(first * V)..<((first + targets[i].count) * V)])
        }
    }

    /// One model's log-probabilities at the target positions of `range`'s examples, [c, positions, V]:
    /// row j of example i is log p(target[j] | context, target[..<j]). Past a target's end the rows
    /// are masked and hold the uniform distribution.
    /// Also gives, per example, the log-probability of each target token and the argmax per position.
    static func run(_ reader: Reader, range: Range<Int>, targets: [[Int]], positions: Int) throws -> (
        ModelOutputs, [(logprobs: [Double], argmax: [Int])]
    ) {
        let rows = try targetRows(reader, range: range, targets: targets)
        let V = reader.model.vocab
        let c = range.count
        var values = [Float](repeating: -Float(log(Double(V))), count: c * positions * V)
        var mask = [UInt8](repeating: 0, count: c * positions)
        var picked: [(logprobs: [Double], argmax: [Int])] = []
        for (k, i) in range.enumerated() {
            var logprobs: [Double] = []
            var best: [Int] = []
            for j in 0..<targets[i].count {
                let from = j * V
                let row = rows[k][from..<(from + V)]
                values.replaceSubrange((k * positions + j) * V..<(k * positions + j + 1) * V, with: row)
                mask[k * positions + j] = 1
                logprobs.append(Double(row[from + targets[i][j]]))
                var top = from
                for x in from..<(from + V) where row[x] > row[top] { top = x }
                best.append(top - from)
            }
            picked.append((logprobs, best))
        }
        let maskTensor = Tensor(uint8: mask, shape: [c, positions])
        let outputs = ModelOutputs(
            kind: .logprobs, layout: .dense(values: Tensor(float32: values, shape: [c, positions, V])), examples: c,
            positions: positions, vocab: V, mask: maskTensor)
        return (outputs, picked)
    }

    static func tokenizerName(_ m: LanguageModel) -> String {
        m.tokenizerInfo.map { "\($0.kind) tokenizer of \($0.vocab)" } ?? "no tokenizer"
    }

}
