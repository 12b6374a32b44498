/// The shape of a transformer language model, whatever file it came from.
///
/// Filled from a Hugging Face `config.json` or from a GGUF file's `<arch>.*` metadata; the
/// forward pass reads nothing else. Names follow Hugging Face's configuration fields.
public struct ModelConfig: Sendable, Equatable {
    public var architecture: Architecture
    public var vocabSize: Int
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    /// Key/value heads (grouped-query attention); equal to `heads` for multi-head attention.
    public var kvHeads: Int
    /// Per-head dimension, usually `hiddenSize / heads`.
    public var headDim: Int
    public var intermediateSize: Int
    /// The longest context the model accepts (`max_position_embeddings`, `n_positions`).
    public var maxPositions: Int
    /// LayerNorm epsilon (GPT-2) or RMSNorm epsilon (the Llama family).
    public var normEpsilon: Float
    /// RoPE base θ; unused by GPT-2.
    public var ropeTheta: Double
    public var ropeScaling: RopeScaling?
    /// Whether the output head shares the token embedding matrix.
    public var tiedEmbeddings: Bool
    /// Biases on the query, key and value projections (Qwen2).
    public var attentionBias: Bool
    /// Mistral's sliding-window attention: a query attends to itself and the `slidingWindow − 1`
    /// positions before it. nil for full causal attention (every model while the context is no
    /// longer than the window).
    public var slidingWindow: Int?

    public init(
        architecture: Architecture, vocabSize: Int, hiddenSize: Int, layers: Int, heads: Int, kvHeads: Int,
        headDim: Int, intermediateSize: Int, maxPositions: Int, normEpsilon: Float, ropeTheta: Double = 10_000,
        ropeScaling: RopeScaling? = nil, tiedEmbeddings: Bool, attentionBias: Bool = false, slidingWindow: Int? = nil
    ) {
        self.architecture = architecture
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.layers = layers
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.intermediateSize = intermediateSize
        self.maxPositions = maxPositions
        self.normEpsilon = normEpsilon
        self.ropeTheta = ropeTheta
        self.ropeScaling = ropeScaling
        self.tiedEmbeddings = tiedEmbeddings
        self.attentionBias = attentionBias
        self.slidingWindow = slidingWindow
    }
}

/// The model families distilld runs. Mistral and SmolLM share Llama's shape (RMSNorm, RoPE,
/// SwiGLU, grouped-query attention); Qwen2 adds attention biases.
public enum Architecture: String, Sendable, CaseIterable {
    case gpt2, llama, qwen2, mistral
}

/// RoPE frequency scaling as `rope_scaling` in config.json describes it.
public enum RopeScaling: Sendable, Equatable {
    /// Positions divided by `factor`.
    case linear(factor: Double)
    /// Llama 3's band-wise scaling of the inverse frequencies.
    case llama3(factor: Double, lowFrequencyFactor: Double, highFrequencyFactor: Double, originalMaxPositions: Int)
}

/// How a tensor is stored in its file (`sourceDtype` on the wire).
///
/// The GGUF block types beyond Q8_0, Q4_0 and Q4_1 are those of the common llama.cpp mixes
/// (Q4_K_M files hold Q4_K and Q6_K tensors; Q5_0 and Q5_1 appear in older files).
public enum StoredType: String, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", q8_0 = "Q8_0", q4_0 = "Q4_0", q4_1 = "Q4_1"
    case q5_0 = "Q5_0", q5_1 = "Q5_1", q4_K = "Q4_K", q6_K = "Q6_K"
}
