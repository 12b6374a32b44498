import DistillJSON
import DistillModels
import DistillNGram
import DistillProtocol
import DistillStore
import DistillTokenize
import Foundation

/// model/*: language models held by name, run on request. Where a model runs is DistillModels'
/// `LanguageModel`; this file reads requests into its calls and its results into replies.
enum ModelMethods {
    // MARK: - Loading

    @Sendable static func load(_ request: ModelLoadRequest, _ context: RequestContext) throws -> ModelInfo {
        let registry = context.server.registry
        let (name, replace) = (request.target.name, request.target.replace)
        let entry: ModelEntry
        switch request.source {
        case .file(let path, let format, let tokenizer):
            entry = try modelCall {
                try registry.loadModel(
                    name: name, source: ModelSource(path: path, format: format, tokenizer: tokenizer), replace: replace,
                    progress: { context.report($0, "loading") }, isCancelled: { context.cancellation.isCancelled },
                    commitIf: { context.cancellation.claimResult() })
            }
        case .build(let datasetName, let order, let side, let fallback, let withTarget):
            let dataset = try registry.dataset(named: datasetName)
            context.report(0, "counting")
            if withTarget, dataset.kind == .inputs {
                throw ResponseError.invalidParams(field: "params.build.withTarget", "'\(datasetName)' is an input list; it has no targets")
            }
            if withTarget, let e = dataset.examples.first(where: { ($0.target ?? "").isEmpty }) {
                throw ResponseError.invalidParams(
                    field: "params.build.withTarget", "example '\(e.id)' (line \(e.line)) has no target",
                    extra: [("example", JSON(e.id))])
            }
            let sentences =
                dataset.kind == .inputs
                ? dataset.inputs.map(\.text)
                : dataset.examples.map { e in
                    let context = side == .full ? e.full : e.simplified
                    return withTarget ? context + " " + e.target! : context
                }
            let built = try modelCall(buildField: "params.build") {
                try LanguageModel.kneserNey(sentences: sentences, order: order, discountFallback: fallback)
            }
            entry = try modelCall { try registry.addModel(name: name, model: built, replace: replace) }
        }
        let info = try ModelInfo(entry)
        context.server.log(.info, "model '\(name)' loaded: \(info.architecture), \(info.parameters) parameters, vocabulary \(info.vocab)")
        return info
    }

    @Sendable static func list(_ request: ModelListRequest, _ context: RequestContext) throws -> ModelListRequest.Response {
        let registry = context.server.registry
        let lines = registry.list().filter { $0.type == .model }.compactMap { summary -> ModelListRequest.Response.Line? in
            guard case .model(let entry)? = registry.entry(summary.name), let model = entry.contents as? LanguageModel else { return nil }
            return .init(
                name: entry.name, kind: model.kind.rawValue, architecture: model.architecture, parameters: model.parameters,
                residentBytes: model.residentBytes, mappedBytes: model.mappedBytes, path: entry.source?.path)
        }
        return .init(models: lines)
    }

    @Sendable static func info(_ request: ModelInfoRequest, _ context: RequestContext) throws -> ModelInfo {
        try ModelInfo(try context.server.registry.model(named: request.name).entry)
    }

    @Sendable static func unload(_ request: ModelUnloadRequest, _ context: RequestContext) throws -> Unloaded {
        _ = try context.server.registry.model(named: request.name)
        try modelCall(name: request.name) { try context.server.registry.unload(name: request.name) }
        return Unloaded(name: request.name)
    }

    // MARK: - Tokens

    @Sendable static func tokenize(_ request: ModelTokenizeRequest, _ context: RequestContext) throws -> ModelTokenizeRequest.Response {
        let model = try context.server.registry.model(named: request.model).model
        guard let chat = request.chat else {
            let e = try modelCall { try model.encode(request.text, addSpecial: request.addSpecial, field: "params.text") }
            return .init(tokens: e.ids, pieces: e.pieces)
        }
        let text = try PromptRenderer(chat, model: model, name: request.model, field: "params").renderChat(user: request.text)
        let e = try modelCall { try model.encode(text, addSpecial: request.addSpecial, field: "params.text") }
        return .init(tokens: e.ids, pieces: e.pieces, text: text)
    }

    @Sendable static func detokenize(
        _ request: ModelDetokenizeRequest, _ context: RequestContext
    ) throws -> ModelDetokenizeRequest.Response {
        let model = try context.server.registry.model(named: request.model).model
        return .init(text: try modelCall { try model.decode(request.tokens, skipSpecial: request.skipSpecial, field: "params.tokens") })
    }

    // MARK: - Running

    @Sendable static func logprobs(_ request: ModelLogprobsRequest, _ context: RequestContext) throws -> ModelLogprobsRequest.Response {
        let model = try context.server.registry.modelForUse(named: request.model)
        let encodings = try request.inputs.map { try encoded($0, model, addSpecial: request.addSpecial) }
        let sequences = encodings.map(\.ids)
        if context.cancellation.isCancelled { throw CancellationError() }
        context.report(0, "running \(sequences.count) sequence\(sequences.count == 1 ? "" : "s")")
        let rows = try modelCall { try model.logProbabilities(sequences) }
        let V = model.vocab
        let out = zip(encodings, rows).map { encoding, logp in
            let ids = encoding.ids
            let T = ids.count
            var next: [Double?] = []
            var entropy: [Double] = []
            var top: [(ids: [Int], pieces: [String], logprobs: [Double])] = []
            logp.withUnsafeBufferPointer { all in
                for t in 0..<T {
                    let row = UnsafeBufferPointer(rebasing: all[(t * V)..<((t + 1) * V)])
                    next.append(t + 1 < T ? Double(row[ids[t + 1]]) : nil)
                    entropy.append(Self.entropy(row))
                    if request.topk > 0 {
                        let best = Self.top(row, request.topk)
                        top.append((best, best.map(model.piece), best.map { Double(row[$0]) }))
                    }
                }
            }
            return ModelLogprobsRequest.Sequence(
                tokens: ids, pieces: encoding.pieces, logprobs: next, entropy: entropy, top: request.topk > 0 ? top : nil,
                full: request.full ? logp : nil, vocab: V)
        }
        return .init(model: request.model, sequences: out)
    }

    @Sendable static func generate(_ request: ModelGenerateRequest, _ context: RequestContext) throws -> ModelGenerateRequest.Response {
        let model = try context.server.registry.modelForUse(named: request.model)
        let prompt: [Int]
        switch request.prompt {
        case .text(let text, let field):
            prompt = try modelCall { try model.encodePrompt(text, addSpecial: request.addSpecial, field: field) }
            if prompt.isEmpty { throw ResponseError.invalidParams(field: field, "gives no tokens; a prompt needs at least one") }
        case .tokens(let ids, _):
            prompt = ids
        }
        let options = SamplingOptions(
            maxTokens: request.maxTokens, temperature: request.temperature, topK: request.topK, topP: request.topP, seed: request.seed,
            stop: request.stop)
        let completions = try modelCall {
            try model.generate(
                prompt: prompt, count: request.n, options: options, field: request.prompt.field,
                isCancelled: { context.cancellation.isCancelled })
        }
        return .init(
            model: request.model, promptTokens: prompt,
            completions: completions.map {
                .init(tokens: $0.tokens, text: $0.text, logprob: $0.logprob, finishReason: $0.finishReason.rawValue)
            })
    }

    // MARK: - Helpers

    /// The ids an input stands for, checked against the model (range, context length).
    static func tokens(of input: ModelInput, _ model: LanguageModel, addSpecial: Bool) throws -> [Int] {
        try encoded(input, model, addSpecial: addSpecial).ids
    }

    /// The ids an input stands for and their pieces: as the tokenizer split a text (an n-gram's
    /// unknown word keeps its own spelling), or as the vocabulary spells given ids.
    static func encoded(_ input: ModelInput, _ model: LanguageModel, addSpecial: Bool) throws -> (ids: [Int], pieces: [String]) {
        let e: (ids: [Int], pieces: [String])
        switch input {
        case .text(let text, let field): e = try modelCall { try model.encode(text, addSpecial: addSpecial, field: field) }
        case .tokens(let given, _): e = (given, [])
        }
        if e.ids.isEmpty { throw ResponseError.invalidParams(field: input.field, "gives no tokens; a sequence needs at least one") }
        try modelCall { try model.checkTokens(e.ids, field: input.field) }
        return (e.ids, e.pieces.isEmpty ? e.ids.map(model.piece) : e.pieces)
    }

    /// −Σ p log p of a row of log-probabilities, in Double.
    static func entropy(_ row: UnsafeBufferPointer<Float>) -> Double {
        var h = 0.0
        for l in row where l > -.infinity {
            let d = Double(l)
            h -= exp(d) * d
        }
        return h
    }

    /// The `k` largest entries' indices, best first (lower index first on ties).
    static func top(_ row: UnsafeBufferPointer<Float>, _ k: Int) -> [Int] {
        var best: [Int] = []
        best.reserveCapacity(k + 1)
        for i in 0..<row.count {
            let v = row[i]
            if best.count == k, let last = best.last, row[last] >= v { continue }
            var at = best.count
            while at > 0 && row[best[at - 1]] < v { at -= 1 }
            best.insert(i, at: at)
            if best.count > k { best.removeLast() }
        }
        return best
    }
}

extension ModelInfo {
    init(_ entry: ModelEntry) throws {
        guard let m = entry.contents as? LanguageModel else {
            throw ResponseError(code: .internalError, message: "model '\(entry.name)' is not a language model")
        }
        self.init(
            name: entry.name, kind: m.kind.rawValue, architecture: m.architecture, parameters: m.parameters, layers: m.layers,
            order: m.order, vocab: m.vocab, contextLength: m.contextLength, dtype: "float32", sourceDtype: m.sourceDtype,
            tokenizer: m.tokenizerInfo.map { .init(kind: $0.kind, vocab: $0.vocab, bos: $0.bos, eos: $0.eos) },
            mappedBytes: m.mappedBytes, residentBytes: m.residentBytes,
            source: entry.source.map { ($0.path, m.format, $0.tokenizer) }, loadedAt: entry.loadedAt.timeIntervalSince1970,
            chatTemplate: m.chat.template != nil)
    }
}

extension Registry {
    /// A loaded model, or UnknownModel (1007) with `data.name`.
    func model(named name: String) throws -> (entry: ModelEntry, model: LanguageModel) {
        let entry = try modelCall(name: name) { try model(name) }
        guard let model = entry.contents as? LanguageModel else {
            throw ResponseError(code: .internalError, message: "model '\(name)' is not a language model")
        }
        return (entry, model)
    }

    /// A loaded model about to run: as `model(named:)`, and LoadFailed (1004, `data.reason`
    /// "fileChanged") when a weight file changed since the load; inside `readingFiles`, its files
    /// are watched for truncation until the request ends.
    func modelForUse(named name: String) throws -> LanguageModel {
        let (entry, model) = try model(named: name)
        try modelCall(name: name) { try entry.checkFiles() }
        return model
    }
}

/// Runs a model operation, turning its errors into replies:
/// - the store's as `storeCall` does, but an unknown name is UnknownModel (1007);
/// - a `ModelError` the request caused (context too long, token out of range, no tokenizer) is
///   -32602 naming the field; the rest are LoadFailed (1004) with `data.reason` the error's code;
/// - a tokenizer.json or ARPA file that cannot be read is LoadFailed naming the file (and line);
///   an n-gram that cannot be built from a dataset's text is -32602 naming `buildField`.
func modelCall<T>(name: String? = nil, buildField: String = "params.build", _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as StoreError where error.code == .unknownName {
        let data: JSON = ["reason": "unknownName"]
        if let name { data["name"] = JSON(name) }
        throw ResponseError(code: .unknownModel, message: error.message, data: data)
    } catch let error as StoreError {
        throw ResponseError.store(error, name: name)
    } catch let error as ModelError {
        throw ResponseError.model(error)
    } catch let error as TokenizerError {
        throw ResponseError(
            code: .loadFailed, message: "\(error.path): \(error.message)",
            data: ["reason": JSON("tokenizer." + error.kind.rawValue), "file": JSON(error.path)])
    } catch let error as NGramError {
        if error.kind == .build {
            throw ResponseError.invalidParams(field: buildField, error.message, extra: [("reason", "ngramBuild")])
        }
        let data: JSON = ["reason": JSON("arpa." + error.kind.rawValue)]
        if let path = error.path { data["file"] = JSON(path) }
        if let line = error.line { data["line"] = JSON(line) }
        throw ResponseError(code: .loadFailed, message: error.description, data: data)
    }
}

extension ResponseError {
    static func model(_ error: ModelError) -> ResponseError {
        let data: JSON = ["reason": JSON(error.code.rawValue)]
        if let file = error.file { data["file"] = JSON(file) }
        if let tensor = error.tensor { data["tensor"] = JSON(tensor) }
        for (k, v) in error.numbers.sorted(by: { $0.key < $1.key }) { data[k] = JSON(v) }
        guard error.isInvalidParams || (error.field != nil && error.file == nil && error.code == .unknownFormat) else {
            if let field = error.field { data["configField"] = JSON(field) }
            return ResponseError(code: .loadFailed, message: error.message, data: data)
        }
        let field = error.field.map { $0.hasPrefix("params") ? $0 : "params." + $0 } ?? "params"
        data["field"] = JSON(field)
        return ResponseError(code: .invalidParams, message: "\(field): \(error.message)", data: data)
    }
}
