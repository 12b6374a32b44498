import DistillJSON

/// What `model/load` and `model/info` answer: a loaded model's shape, tokenizer, memory and origin
/// (schema `store.json#/$defs/modelInfo`).
public struct ModelInfo: ResponseType {
    public struct Tokenizer: Sendable, Equatable {
        public var kind: String
        public var vocab: Int
        public var bos: Int?
        public var eos: Int?

        public init(kind: String, vocab: Int, bos: Int?, eos: Int?) {
            self.kind = kind
            self.vocab = vocab
            self.bos = bos
            self.eos = eos
        }
    }

    public var name: String
    /// "transformer" or "ngram".
    public var kind: String
    public var architecture: String
    public var parameters: Int
    public var layers: Int?
    public var order: Int?
    public var vocab: Int
    public var contextLength: Int?
    /// The weights' type as computed.
    public var dtype: String
    /// The weights' type as stored ("Q4_1", "F16", "arpa", "kneser-ney").
    public var sourceDtype: String
    public var tokenizer: Tokenizer?
    public var mappedBytes: Int
    public var residentBytes: Int
    /// The path and format read; nil for a model built in memory.
    public var source: (path: String, format: String, tokenizer: String?)?
    /// Seconds since 1970.
    public var loadedAt: Double
    /// Whether the model has its own chat template (for `params.prompt.chat`).
    public var chatTemplate: Bool

    public init(
        name: String, kind: String, architecture: String, parameters: Int, layers: Int?, order: Int?, vocab: Int,
        contextLength: Int?, dtype: String, sourceDtype: String, tokenizer: Tokenizer?, mappedBytes: Int, residentBytes: Int,
        source: (path: String, format: String, tokenizer: String?)?, loadedAt: Double, chatTemplate: Bool = false
    ) {
        self.chatTemplate = chatTemplate
        self.name = name
        self.kind = kind
        self.architecture = architecture
        self.parameters = parameters
        self.layers = layers
        self.order = order
        self.vocab = vocab
        self.contextLength = contextLength
        self.dtype = dtype
        self.sourceDtype = sourceDtype
        self.tokenizer = tokenizer
        self.mappedBytes = mappedBytes
        self.residentBytes = residentBytes
        self.source = source
        self.loadedAt = loadedAt
    }

    public var json: JSON {
        func optional(_ i: Int?) -> JSON { i.map { JSON($0) } ?? .null }
        let tokenizerJSON: JSON =
            tokenizer.map {
                JSON.object([("kind", JSON($0.kind)), ("vocab", JSON($0.vocab)), ("bos", optional($0.bos)), ("eos", optional($0.eos))])
            } ?? .null
        let sourceJSON: JSON =
            source.map {
                JSON.object([("path", JSON($0.path)), ("format", JSON($0.format)), ("tokenizer", $0.tokenizer.map { JSON($0) } ?? .null)])
            } ?? .null
        return JSON.object([
            ("type", "model"), ("name", JSON(name)), ("kind", JSON(kind)), ("architecture", JSON(architecture)),
            ("parameters", JSON(parameters)), ("layers", optional(layers)), ("order", optional(order)), ("vocab", JSON(vocab)),
            ("contextLength", optional(contextLength)), ("dtype", JSON(dtype)), ("sourceDtype", JSON(sourceDtype)),
            ("tokenizer", tokenizerJSON), ("mappedBytes", JSON(mappedBytes)), ("residentBytes", JSON(residentBytes)),
            ("source", sourceJSON), ("loadedAt", JSON(loadedAt)), ("chatTemplate", JSON(chatTemplate)),
        ])
    }
}
