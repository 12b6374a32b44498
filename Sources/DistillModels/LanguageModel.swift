import DistillNGram
import DistillStore
import DistillTokenize
import Foundation

/// A language model the daemon holds and runs: a transformer with its tokenizer, or an n-gram
/// model over whitespace-separated words. One face for both, so the methods (tokenize, next-token
/// log-probabilities, generation) and the analyses never ask which it is.
///
/// Loaded by `LanguageModel.load` (the registry's `ModelLoader`), which detects the format, checks
/// that the tokenizer fits the model and leaves nothing behind when it throws.
///
/// Positions: for tokens t₀…t_{T−1}, row t of `logProbabilities` is log p(· | t₀…t_t), natural log.
/// For an n-gram model a sequence that starts with `<s>` is scored as a sentence (kenlm's
/// `bos=True`); one that does not starts from the empty context. Its rows are the model's own
/// probabilities (ARPA files from other tools need not sum to exactly 1; `<s>` is never predicted).
public final class LanguageModel: LoadedModel {
    public enum Kind: String, Sendable {
        case transformer, ngram
    }

    enum Body: Sendable {
        case transformer(TransformerModel)
        case ngram(NGramModel)
    }

    let body: Body
    /// The transformer's tokenizer; nil for an n-gram model (words) or a directory without one.
    public let tokenizer: Tokenizer?
    public let format: String
    public let architecture: String
    public let parameters: Int
    /// Transformer layers; nil for an n-gram model.
    public let layers: Int?
    /// The n-gram order; nil for a transformer.
    public let order: Int?
    /// Rows of the output distribution.
    public let vocab: Int
    /// The longest sequence the model takes; nil: unbounded (n-gram).
    public let contextLength: Int?
    /// The weights' type as stored ("Q4_1", "F16", "arpa", "kneser-ney").
    public let sourceDtype: String
    public let residentBytes: Int
    public let mappedBytes: Int
    /// Tokens that end a generation.
    public let endTokens: Set<Int>
    /// The tokenizer as the replies describe it.
    public let tokenizerInfo: TokenizerInfo?
    public let files: [MappedFile]
    /// The model's own chat template and the special tokens' texts it reads (`.none` for an
    /// n-gram model or files without one).
    public let chat: ChatTemplateSource

    public struct TokenizerInfo: Sendable, Equatable {
        public var kind: String
        public var vocab: Int
        public var bos: Int?
        public var eos: Int?
    }

    public var kind: Kind {
        if case .ngram = body { return .ngram }
        return .transformer
    }

    init(
        body: Body, tokenizer: Tokenizer?, format: String, architecture: String, parameters: Int, layers: Int?, order: Int?,
        vocab: Int, contextLength: Int?, sourceDtype: String, residentBytes: Int, mappedBytes: Int, endTokens: Set<Int>,
        tokenizerInfo: TokenizerInfo?, files: [MappedFile] = [], chat: ChatTemplateSource = .none
    ) {
        self.files = files
        self.chat = chat
        self.body = body
        self.tokenizer = tokenizer
        self.format = format
        self.architecture = architecture
        self.parameters = parameters
        self.layers = layers
        self.order = order
        self.vocab = vocab
        self.contextLength = contextLength
        self.sourceDtype = sourceDtype
        self.residentBytes = residentBytes
        self.mappedBytes = mappedBytes
        self.endTokens = endTokens
        self.tokenizerInfo = tokenizerInfo
    }

    // MARK: - Loading

    /// The formats `load` reads.
    public static let formats = ["gguf", "huggingface", "arpa"]

    /// Reads the model `source` names. Throws `ModelError` (naming the file, tensor or field),
    /// DistillStore's `StoreError` for a damaged safetensors or GGUF file, `TokenizerError` for a
    /// bad tokenizer.json and `NGramError` for a bad ARPA file.
    public static func load(
        _ source: ModelSource, progress: ((Double) -> Void)? = nil, isCancelled: (() -> Bool)? = nil
    ) throws -> LanguageModel {
        let format = try source.format ?? detectFormat(source.path)
        progress?(0)
        func checkCancelled() throws { if isCancelled?() == true { throw CancellationError() } }
        let model: LanguageModel
        switch format {
        case "gguf":
            let gguf = try GGUFModel(path: source.path)
            progress?(0.1)
            try checkCancelled()
            let transformer = try TransformerModel(source: gguf)
            try checkCancelled()
            progress?(0.9)
            let tokenizer =
                try source.tokenizer.map(readTokenizer) ?? tokenizerCall(source.path) { try Tokenizer(gguf: gguf.tokenizer) }
            model = try transformerModel(
                transformer, tokenizer: tokenizer, tokenizerPath: source.tokenizer ?? source.path, format: format,
                sourceDtype: gguf.sourceType.rawValue, mappedBytes: gguf.mappedBytes, extraEnd: [], files: [gguf.file.map],
                chat: .gguf(gguf.tokenizer, path: source.path))
        case "huggingface":
            let directory = try HuggingFaceDirectory(path: source.path)
            progress?(0.1)
            try checkCancelled()
            let transformer = try TransformerModel(source: directory)
            try checkCancelled()
            progress?(0.9)
            let own = source.path + "/tokenizer.json"
            let tokenizerPath = source.tokenizer ?? (FileManager.default.fileExists(atPath: own) ? own : nil)
            let tokenizer = try tokenizerPath.map(readTokenizer)
            model = try transformerModel(
                transformer, tokenizer: tokenizer, tokenizerPath: tokenizerPath, format: format,
                sourceDtype: dominantType(directory), mappedBytes: directory.mappedBytes,
                extraEnd: Set(directory.generation?.eosTokenIds ?? []), files: directory.files.map(\.map),
                chat: .huggingFace(directory: source.path, fallback: ChatTemplateSource.tokenTexts(tokenizer)))
        case "arpa":
            if let tokenizer = source.tokenizer {
                throw ModelError(
                    .badConfig, "an n-gram model reads whitespace-separated words; it takes no tokenizer (\(tokenizer))",
                    field: "options.tokenizer")
            }
            model = ngram(try NGramModel.read(path: source.path), format: format, sourceDtype: "arpa")
        default:
            throw ModelError(
                .unknownFormat, "unknown model format '\(format)'; the formats are \(formats.joined(separator: ", "))", field: "format")
        }
        progress?(1)
        return model
    }

    /// The tokenizer.json at `file`, its errors as `ModelError.badTokenizer` naming the file.
    static func readTokenizer(_ file: String) throws -> Tokenizer {
        try tokenizerCall(file) { try Tokenizer(tokenizerJSON: file) }
    }

    /// Runs a tokenizer's construction, turning its error into `.badTokenizer` with the file and
    /// the member (or metadata key) at fault.
    static func tokenizerCall(_ file: String, _ body: () throws -> Tokenizer) throws -> Tokenizer {
        do {
            return try body()
        } catch let e as TokenizerError {
            let member = e.path.isEmpty || e.path == file ? nil : e.path
            throw ModelError(
                .badTokenizer, "\(file): the tokenizer cannot be used: \(member.map { $0 + ": " } ?? "")\(e.message)", file: file,
                field: member)
        }
    }

    /// The format of `path` from what it is: a directory is a Hugging Face one; a file by its
    /// suffix, else by its first bytes (GGUF's magic, ARPA's `\data\`). A pickled checkpoint is
    /// refused by its name, before it is opened.
    static func detectFormat(_ path: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelError(.missingFile, "\(path) does not exist", file: path)
        }
        if isDirectory.boolValue { return "huggingface" }
        let name = (path as NSString).lastPathComponent
        if HuggingFaceDirectory.isPickled(name) { throw HuggingFaceDirectory.pickleRefusal(path) }
        let lower = name.lowercased()
        if lower.hasSuffix(".gguf") { return "gguf" }
        if lower.hasSuffix(".arpa") { return "arpa" }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ModelError(.missingFile, "\(path) cannot be opened for reading", file: path)
        }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 64)) ?? Data()
        if head.starts(with: Array("GGUF".utf8)) { return "gguf" }
        if let text = String(data: head, encoding: .utf8), text.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("\\data\\") {
            return "arpa"
        }
        throw ModelError(
            .unknownFormat,
            "\(path) is not a model distilld reads: give a GGUF file, a Hugging Face directory (config.json and safetensors) "
                + "or an ARPA file, or name the format",
            file: path)
    }

    /// The stored type holding most of a directory's weights.
    static func dominantType(_ directory: HuggingFaceDirectory) -> String {
        var elements: [StoredType: Int] = [:]
        for name in directory.names {
            guard let (shape, stored) = directory.info(name) else { continue }
            elements[stored, default: 0] += shape.reduce(1, *)
        }
        return elements.max { $0.value < $1.value }?.key.rawValue ?? "F32"
    }

    static func transformerModel(
        _ transformer: TransformerModel, tokenizer: Tokenizer?, tokenizerPath: String?, format: String, sourceDtype: String,
        mappedBytes: Int, extraEnd: Set<Int>, files: [MappedFile], chat: ChatTemplateSource
    ) throws -> LanguageModel {
        let c = transformer.config
        if let tokenizer, tokenizer.vocabSize > c.vocabSize {
            throw ModelError(
                .vocabMismatch,
                "the tokenizer has \(tokenizer.vocabSize) ids but the model's vocabulary has \(c.vocabSize) rows: "
                    + "they are not made for each other",
                file: tokenizerPath, numbers: ["tokenizerVocab": tokenizer.vocabSize, "modelVocab": c.vocabSize])
        }
        var end = extraEnd
        if let eos = tokenizer?.eos { end.insert(eos) }
        return LanguageModel(
            body: .transformer(transformer), tokenizer: tokenizer, format: format, architecture: c.architecture.rawValue,
            parameters: transformer.parameterCount, layers: c.layers, order: nil, vocab: c.vocabSize, contextLength: c.maxPositions,
            sourceDtype: sourceDtype, residentBytes: transformer.residentBytes, mappedBytes: mappedBytes, endTokens: end,
            tokenizerInfo: tokenizer.map { TokenizerInfo(kind: $0.kind.rawValue, vocab: $0.vocabSize, bos: $0.bos, eos: $0.eos) },
            files: files, chat: chat)
    }

    /// An n-gram model as a language model (`sourceDtype` "arpa" for a file, "kneser-ney" for one
    /// built in memory).
    public static func ngram(_ model: NGramModel, format: String = "arpa", sourceDtype: String) -> LanguageModel {
        let v = model.vocabulary
        return LanguageModel(
            body: .ngram(model), tokenizer: nil, format: format, architecture: "ngram", parameters: model.counts.reduce(0, +),
            layers: nil, order: model.order, vocab: v.count, contextLength: nil, sourceDtype: sourceDtype,
            residentBytes: model.storageBytes, mappedBytes: 0, endTokens: [Int(v.endSentence)],
            tokenizerInfo: TokenizerInfo(kind: "words", vocab: v.count, bos: Int(v.beginSentence), eos: Int(v.endSentence)))
    }

    // MARK: - Text and tokens

    /// Token ids and their pieces. `field` names the request member the text came from, for errors.
    public func encode(_ text: String, addSpecial: Bool, field: String = "text") throws -> (ids: [Int], pieces: [String]) {
        switch body {
        case .ngram(let m):
            var words = whitespaceTokens(text)
            var ids = words.map { Int(m.vocabulary.id($0)) }
            if addSpecial {
                words = ["<s>"] + words + ["</s>"]
                ids = [Int(m.vocabulary.beginSentence)] + ids + [Int(m.vocabulary.endSentence)]
            }
            return (ids, words)
        case .transformer:
            guard let tokenizer else {
                throw ModelError(
                    .noTokenizer, "this model was loaded without a tokenizer: give token ids, or load it with options.tokenizer",
                    field: field)
            }
            let e = tokenizer.encoding(text, addSpecial: addSpecial)
            return (e.ids, e.pieces)
        }
    }

    /// The piece a token id stands for ("" for an id the tokenizer does not spell).
    public func piece(_ id: Int) -> String {
        switch body {
        case .ngram(let m): return id >= 0 && id < m.vocabulary.count ? m.vocabulary.words[id] : ""
        case .transformer: return tokenizer?.piece(id) ?? ""
        }
    }

    /// Checks every id is a row of the output and the sequence fits the window; `field` names the
    /// request member.
    public func checkTokens(_ ids: [Int], field: String) throws {
        try checkRange(ids, field: field)
        if let contextLength, ids.count > contextLength {
            throw ModelError(
                .contextTooLong, "\(ids.count) tokens are longer than the model's context of \(contextLength)", field: field,
                numbers: ["actual": ids.count, "maximum": contextLength])
        }
    }

    /// Throws `.tokenOutOfRange` for the first id that is not a row of the output.
    func checkRange(_ ids: [Int], field: String) throws {
        if let i = ids.firstIndex(where: { $0 < 0 || $0 >= vocab }) {
            throw ModelError(
                .tokenOutOfRange, "token \(ids[i]) at position \(i) is outside the vocabulary of \(vocab)", field: field,
                numbers: ["position": i, "token": ids[i], "vocab": vocab])
        }
    }

    public func decode(_ ids: [Int], skipSpecial: Bool, field: String = "tokens") throws -> String {
        try checkRange(ids, field: field)
        switch body {
        case .ngram(let m):
            let special: Set<Int> = [Int(m.vocabulary.beginSentence), Int(m.vocabulary.endSentence)]
            return ids.filter { !(skipSpecial && special.contains($0)) }.map { m.vocabulary.words[$0] }.joined(separator: " ")
        case .transformer:
            guard let tokenizer else {
                throw ModelError(.noTokenizer, "this model was loaded without a tokenizer, so it cannot spell tokens", field: field)
            }
            return tokenizer.decode(ids.filter { $0 < tokenizer.vocabSize }, skipSpecial: skipSpecial)
        }
    }

    // MARK: - Running

    /// log p(· | t₀…t_t) for every position of every sequence: [T, V] row-major per sequence.
    /// Several transformer sequences run in one batched pass.
    public func logProbabilities(_ batch: [[Int]]) throws -> [[Float]] {
        switch body {
        case .transformer(let t):
            var out = try t.logits(batch: batch)
            for i in out.indices { TransformerModel.logSoftmax(&out[i], vocab: vocab) }
            return out
        case .ngram(let m):
            return batch.map { tokens in
                var rows: [Float] = []
                rows.reserveCapacity(tokens.count * vocab)
                for state in ngramStates(m, tokens) {
                    rows += m.nextWordLogProbabilities(after: state).map { Float($0) }
                }
                return rows
            }
        }
    }

    /// The state after each prefix t₀…t_t.
    func ngramStates(_ m: NGramModel, _ tokens: [Int]) -> [NGramState] {
        var states: [NGramState] = []
        var state = m.nullContextState
        for (i, token) in tokens.enumerated() {
            if i == 0 && token == Int(m.vocabulary.beginSentence) {
                state = m.beginSentenceState
            } else {
                state = m.score(WordID(token), after: state).next
            }
            states.append(state)
        }
        return states
    }
}

extension LanguageModel {
    /// An interpolated modified Kneser–Ney model of `order` over `sentences` (whitespace-separated
    /// words), as DistillNGram's builder estimates it. Throws `NGramError` (`.build`) when the text
    /// cannot support the order (or holds `<s>`, `</s>` or `<unk>` as words). `discountFallback`
    /// (D1, D2, D3+) stands in for the discounts of an order whose counts cannot give them.
    public static func kneserNey(sentences: [String], order: Int, discountFallback: [Double]? = nil) throws -> LanguageModel {
        var builder = try KneserNeyBuilder(options: KneserNeyOptions(order: order, discountFallback: discountFallback))
        for sentence in sentences { try builder.add(sentence: sentence) }
        return ngram(try builder.build().model, format: "kneser-ney", sourceDtype: "kneser-ney")
    }

    /// A prompt's ids: as `encode`, except that an n-gram prompt opens a sentence without closing it.
    public func encodePrompt(_ text: String, addSpecial: Bool, field: String) throws -> [Int] {
        var ids = try encode(text, addSpecial: addSpecial, field: field).ids
        if case .ngram(let m) = body, addSpecial, ids.last == Int(m.vocabulary.endSentence) { ids.removeLast() }
        return ids
    }
}
