import DistillModels
import DistillProtocol
import DistillStore
import Foundation

/// teacher/generate: n samples of a model for every example's context (full or simplified, formatted
/// by `params.prompt`), each with the model's log-probability of it; example i draws with seeds
/// `seed + i·n ...`, so a request gives the same candidates on every run.
enum TeacherGenerate {
    @Sendable static func handle(
        _ request: TeacherGenerateRequest, _ context: RequestContext
    ) throws -> TeacherGenerateRequest.Response {
        let registry = context.server.registry
        let dataset = try registry.dataset(named: request.dataset)
        guard dataset.kind == .paired else {
            throw ResponseError.invalidParams(field: "params.dataset", "'\(request.dataset)' is an input list; give a paired dataset")
        }
        let model = try registry.modelForUse(named: request.model)
        let examples = Array(dataset.examples.prefix(request.limit ?? Int.max))
        let renderer = try PromptRenderer(request.prompt, model: model, name: request.model)
        // Every prompt is formatted before the first sample is drawn: a template's refusal comes first.
        let prompts = try examples.map { try renderer.context($0, readsFull: request.context == .full) }
        var out: [TeacherGenerateRequest.Example] = []
        for (i, e) in examples.enumerated() {
            if context.cancellation.isCancelled { throw CancellationError() }
            let prompt = prompts[i]
            let ids = try modelCall {
                try model.encodePrompt(prompt, addSpecial: renderer.addSpecial(true), field: "params.dataset")
            }
            let options = SamplingOptions(
                maxTokens: request.maxTokens, temperature: request.temperature, topK: request.topK, topP: request.topP,
                seed: request.seed &+ UInt64(i * request.n), stop: request.stop)
            let completions = try modelCall {
                try model.generate(
                    prompt: ids, count: request.n, options: options, field: "params.dataset",
                    isCancelled: { context.cancellation.isCancelled })
            }
            out.append(
                .init(
                    id: e.id, prompt: prompt,
                    candidates: completions.map {
                        .init(text: $0.text, tokens: $0.tokens, logprob: $0.logprob, finishReason: $0.finishReason.rawValue)
                    }))
            context.report(Double(i + 1) / Double(max(1, examples.count)), "\(i + 1)/\(examples.count) examples")
        }
        return .init(model: request.model, examples: out)
    }
}
