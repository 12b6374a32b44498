/// Building a tokenizer from a GGUF file's `tokenizer.ggml.*` metadata.
///
/// A GGUF file has no tokenizer.json: it stores the vocabulary, merges or scores, token types and
/// special ids under llama.cpp's key names. The tokenizer is rebuilt here the way transformers
/// rebuilds it for `from_pretrained(..., gguf_file=)`, the reference the tests compare against:
///
/// - `gpt2`: byte-level BPE over the file's merges. The split pattern follows `tokenizer.ggml.pre`:
///   the Llama-3 pattern for the Llama-3 family, the Qwen2 pattern for the Qwen2 family, and
///   GPT-2's for "gpt-2", "default" and "smollm". (llama.cpp itself also cuts digits apart first
///   for "smollm", as SmolLM's own tokenizer.json does; transformers does not, which shows only
///   where a run of spaces precedes a digit: "a  1" is "a", "Ġ", "Ġ", "1" there and "a", "ĠĠ",
///   "1" in llama.cpp. The tests hold this tokenizer to transformers.)
/// - `llama`: SentencePiece BPE with scores: adjacent pieces are merged by the score of the token
///   they form, best first, as llama.cpp's SPM tokenizer does; characters outside the vocabulary
///   become `<0xNN>` byte tokens. Spaces are "▁", and one is prepended at the start of the text
///   unless `add_space_prefix` is false.
///
/// Control tokens (type 3) are special added tokens and user-defined ones (type 4) plain added
/// tokens, both matched whole in the text; so are the bos, eos, unknown and padding tokens.
extension Tokenizer {
    public convenience init(gguf data: GGUFTokenizerData) throws {
        try self.init(parts: GGUFTokenizerReader.parts(data))
    }
}

enum GGUFTokenizerReader {
    static let supportedModels = ["gpt2", "llama"]

    /// `tokenizer.ggml.pre` values and the split pattern each stands for (nil: GPT-2's own).
    static let preTokenizers: [String: SplitPattern?] = [
        "default": nil, "gpt-2": nil, "smollm": nil,
        "llama3": .llama3, "llama-v3": .llama3, "llama-bpe": .llama3, "falcon3": .llama3, "dbrx": .llama3,
        "smaug-bpe": .llama3, "pixtral": .llama3,
        "qwen2": .qwen2, "deepseek-r1-qwen": .qwen2, "megrez": .qwen2,
    ]

    static func parts(_ data: GGUFTokenizerData) throws -> Tokenizer.Parts {
        let count = data.tokens.count
        guard count > 0 else { throw TokenizerError(.malformed, path: "tokenizer.ggml.tokens", "the vocabulary is empty") }
        if let types = data.tokenTypes, types.count != count {
            throw TokenizerError(
                .malformed, path: "tokenizer.ggml.token_type", "\(types.count) token types for \(count) tokens")
        }
        for (key, id) in [
            ("bos_token_id", data.bos), ("eos_token_id", data.eos), ("unknown_token_id", data.unknown), ("padding_token_id", data.padding),
        ] {
            if let id, id < 0 || id >= count {
                throw TokenizerError(.malformed, path: "tokenizer.ggml.\(key)", "token \(id) is outside the vocabulary of \(count)")
            }
        }
        switch data.model {
        case "gpt2": return try byteLevel(data)
        case "llama": return try sentencePiece(data)
        default:
            throw TokenizerError.unsupported("tokenizer model", data.model, at: "tokenizer.ggml.model", supported: supportedModels)
        }
    }

    private static func byteLevel(_ data: GGUFTokenizerData) throws -> Tokenizer.Parts {
        let pattern: SplitPattern?
        if let pre = data.pre {
            guard let known = preTokenizers[pre] else {
                throw TokenizerError.unsupported(
                    "pre-tokenizer", pre, at: "tokenizer.ggml.pre", supported: preTokenizers.keys.sorted())
            }
            pattern = known
        } else {
            pattern = nil
        }
        guard let mergeStrings = data.merges else {
            throw TokenizerError(.malformed, path: "tokenizer.ggml.merges", "missing: a gpt2 tokenizer needs its merges")
        }
        // Entries outside the byte alphabet (some converters write added tokens as plain text)
        // are respelled, as transformers does.
        var vocabulary: [ExactText: Int] = [:]
        vocabulary.reserveCapacity(data.tokens.count)
        for (id, token) in data.tokens.enumerated() {
            vocabulary[ExactText(ByteLevel.isSpelledInBytes(token) ? token : ByteLevel.spell(token))] = id
        }
        var merges: [(String, String)] = []
        merges.reserveCapacity(mergeStrings.count)
        for (index, text) in mergeStrings.enumerated() {
            merges.append(try TokenizerJSONReader.mergePair(text, path: "tokenizer.ggml.merges[\(index)]"))
        }
        let model = try BPEModel(vocabulary: vocabulary, merges: merges, options: .init(), path: "tokenizer.ggml.merges")
        let preTokenizer: PreTokenizer =
            pattern.map { .sequence([.split(.pattern($0), .isolated, invert: false), .byteLevel(addPrefixSpace: false, useRegex: false)]) }
            ?? .byteLevel(addPrefixSpace: false, useRegex: true)
        let added = addedTokens(data, vocabulary: vocabulary) { ByteLevel.isSpelledInBytes($0) }
        return Tokenizer.Parts(
            kind: .byteLevelBPE, model: model, normalizer: nil, preTokenizer: preTokenizer,
            postProcessor: template(data, addBosByDefault: false), decoder: .byteLevel, addedTokens: added,
            bos: data.bos, eos: data.eos)
    }

    private static func sentencePiece(_ data: GGUFTokenizerData) throws -> Tokenizer.Parts {
        guard let scores = data.scores else {
            throw TokenizerError(.malformed, path: "tokenizer.ggml.scores", "missing: a llama tokenizer merges by its scores")
        }
        guard scores.count == data.tokens.count else {
            throw TokenizerError(.malformed, path: "tokenizer.ggml.scores", "\(scores.count) scores for \(data.tokens.count) tokens")
        }
        var options = BPEModel.Options()
        options.byteFallback = true
        let model = try BPEModel(spmTokens: data.tokens, scores: scores, options: options)
        let prefixSpace = data.addSpacePrefix ?? true
        var decoders: [Decoder] = [.replace(pattern: ["\u{2581}"], content: [" "]), .byteFallback, .fuse]
        if prefixSpace { decoders.append(.strip(content: " ", start: 1, stop: 0)) }
        let added = addedTokens(data, vocabulary: model.ids) { _ in true }
        return Tokenizer.Parts(
            kind: .sentencePieceBPE, model: model, normalizer: nil,
            preTokenizer: .metaspace(replacement: "\u{2581}", prepend: prefixSpace ? .first : .never, split: false),
            postProcessor: template(data, addBosByDefault: true), decoder: .sequence(decoders), addedTokens: added,
            bos: data.bos, eos: data.eos)
    }

    /// Control tokens (that `accepts`) as special tokens, user-defined ones as plain added tokens,
    /// and the bos, eos, unknown and padding tokens as special ones.
    private static func addedTokens(
        _ data: GGUFTokenizerData, vocabulary: [ExactText: Int], accepts: (String) -> Bool
    ) -> [AddedToken] {
        var added: [AddedToken] = []
        var seen: Set<ExactText> = []
        func add(_ content: String, special: Bool) {
            let key = ExactText(content)
            guard !content.isEmpty, !seen.contains(key), let id = vocabulary[key] else { return }
            seen.insert(key)
            added.append(AddedToken(id: id, content: content, special: special))
        }
        for (id, type) in (data.tokenTypes ?? []).enumerated() where type == 3 && accepts(data.tokens[id]) {
            add(data.tokens[id], special: true)
        }
        for (id, type) in (data.tokenTypes ?? []).enumerated() where type == 4 {
            add(data.tokens[id], special: false)
        }
        for id in [data.bos, data.eos, data.unknown, data.padding].compactMap({ $0 }) where accepts(data.tokens[id]) {
            add(data.tokens[id], special: true)
        }
        return added
    }

    /// bos before the text when `add_bos_token` says so (llama.cpp's default differs by model),
    /// eos after it when `add_eos_token` does.
    private static func template(_ data: GGUFTokenizerData, addBosByDefault: Bool) -> PostProcessor {
        var items: [PostProcessor.Item] = []
        if data.addBos ?? addBosByDefault, let bos = data.bos { items.append(.special(ids: [bos], pieces: [data.tokens[bos]])) }
        items.append(.text)
        if data.addEos ?? false, let eos = data.eos { items.append(.special(ids: [eos], pieces: [data.tokens[eos]])) }
        return .template(items)
    }
}
