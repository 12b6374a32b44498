import DistillJSON
import DistillProtocol
import Testing

/// model/* params as their request types read them: the defaults, the one-of rules of the
/// inputs, and each complaint naming its field exactly.
struct ModelRequestTests {
    static func params(_ text: String) throws -> Field { try Field.params(try JSON.parse(Array(text.utf8))) }

    @Test func logprobsReadsOneKindOfInputWithEachSequenceNamed() throws {
        let nested = try ModelLogprobsRequest(params: Self.params(#"{"model": "m", "tokens": [[1, 2], [3]], "topk": 5}"#))
        #expect(nested.inputs == [.tokens([1, 2], field: "params.tokens[0]"), .tokens([3], field: "params.tokens[1]")])
        #expect(nested.topk == 5 && nested.addSpecial && !nested.full)
        let flat = try ModelLogprobsRequest(params: Self.params(#"{"model": "m", "tokens": [4, 5]}"#))
        #expect(flat.inputs == [.tokens([4, 5], field: "params.tokens")])
        let texts = try ModelLogprobsRequest(params: Self.params(#"{"model": "m", "texts": ["a", "b c"], "addSpecial": false}"#))
        #expect(texts.inputs == [.text("a", field: "params.texts[0]"), .text("b c", field: "params.texts[1]")])
        #expect(!texts.addSpecial && texts.ordering == .reading(["m"]))

        expectInvalidParams(field: "params.tokens", "give one of text, texts, tokens, not several") {
            _ = try ModelLogprobsRequest(params: Self.params(#"{"model": "m", "text": "a", "tokens": [1]}"#))
        }
        expectInvalidParams(field: "params.text", "is required (give one of text, texts, tokens)") {
            _ = try ModelLogprobsRequest(params: Self.params(#"{"model": "m"}"#))
        }
        expectInvalidParams(field: "params.tokens[1][0]", "must be at least 0, got -1") {
            _ = try ModelLogprobsRequest(params: Self.params(#"{"model": "m", "tokens": [[1], [-1]]}"#))
        }
        expectInvalidParams(field: "params.tokens[0]", "must hold at least one token") {
            _ = try ModelLogprobsRequest(params: Self.params(#"{"model": "m", "tokens": [[]]}"#))
        }
        expectInvalidParams(field: "params.topk", "must be at most 100, got 101") {
            _ = try ModelLogprobsRequest(params: Self.params(#"{"model": "m", "text": "a", "topk": 101}"#))
        }
    }

    @Test func generateHasItsDefaultsAndRefusesWhatCannotBeSampled() throws {
        let r = try ModelGenerateRequest(params: Self.params(#"{"model": "m", "prompt": "Once"}"#))
        #expect(r.maxTokens == 32 && r.temperature == 1 && r.topK == 0 && r.topP == 1 && r.seed == 0 && r.n == 1)
        #expect(r.stop.isEmpty && r.addSpecial && r.prompt == .text("Once", field: "params.prompt"))
        expectInvalidParams(field: "params.temperature", "must lie in 0...100 (0: greedy), got -0.5") {
            _ = try ModelGenerateRequest(params: Self.params(#"{"model": "m", "prompt": "a", "temperature": -0.5}"#))
        }
        expectInvalidParams(field: "params.topP", "must lie in (0, 1], got 0.0") {
            _ = try ModelGenerateRequest(params: Self.params(#"{"model": "m", "prompt": "a", "topP": 0}"#))
        }
        expectInvalidParams(field: "params.n", "must be at most 16, got 17") {
            _ = try ModelGenerateRequest(params: Self.params(#"{"model": "m", "prompt": "a", "n": 17}"#))
        }
        expectInvalidParams(field: "params.stop[1]", "must not be empty") {
            _ = try ModelGenerateRequest(params: Self.params(#"{"model": "m", "prompt": "a", "stop": ["x", ""]}"#))
        }
        expectInvalidParams(field: "params.tokens", "must be one array of token ids") {
            _ = try ModelGenerateRequest(params: Self.params(#"{"model": "m", "tokens": [[1], [2]]}"#))
        }
    }

    @Test func loadReadsAFileOrABuildNeverBoth() throws {
        let file = try ModelLoadRequest(params: Self.params(#"{"name": "s", "path": "/m.gguf", "options": {"tokenizer": "/t.json"}}"#))
        #expect(file.source == .file(path: "/m.gguf", format: nil, tokenizer: "/t.json") && file.ordering == .updating(["s"]))
        let build = try ModelLoadRequest(params: Self.params(#"{"name": "lm", "build": {"dataset": "d", "text": "full"}}"#))
        #expect(build.source == .build(dataset: "d", order: 3, text: .full, discountFallback: nil, withTarget: false))
        #expect(build.ordering == .updating(["lm", "d"]))
        expectInvalidParams(field: "params.build", "give path or build, not both (path was given too)") {
            _ = try ModelLoadRequest(params: Self.params(#"{"name": "lm", "path": "/x", "build": {"dataset": "d"}}"#))
        }
        expectInvalidParams(field: "params.format", "unknown value \"onnx\"; expected one of gguf, huggingface, arpa") {
            _ = try ModelLoadRequest(params: Self.params(#"{"name": "s", "path": "/x", "format": "onnx"}"#))
        }
        expectInvalidParams(field: "params.options.vocab", "unknown field; expected one of tokenizer") {
            _ = try ModelLoadRequest(params: Self.params(#"{"name": "s", "path": "/x", "options": {"vocab": 3}}"#))
        }
        expectInvalidParams(
            field: "params.build.discountFallback", "must be three discounts D1, D2, D3+ with 0 < Dj ≤ j (lmplz suggests [0.5, 1, 1.5])"
        ) {
            _ = try ModelLoadRequest(params: Self.params(#"{"name": "lm", "build": {"dataset": "d", "discountFallback": [0.5, 3, 1]}}"#))
        }
    }

    @Test func anAnalysisModelMayBeALoadedModelRunOnText() throws {
        let field = try Self.params(#"{"model": "m", "texts": ["a b", "c"], "addSpecial": false}"#)
        let reference = try ModelReference(field)
        guard case .running(let model, let inputs, let addSpecial) = reference.source else {
            Issue.record("not read as a model run: \(reference.source)")
            return
        }
        #expect(model == "m" && !addSpecial && inputs.count == 2 && reference.loadedName == "m")
        expectInvalidParams(field: "params.path", "unknown field; expected one of addSpecial, model, text, texts, tokens") {
            _ = try ModelReference(try Self.params(#"{"model": "m", "texts": ["a"], "path": "/x"}"#))
        }
    }
}
