import DistillJSON

/// A Hugging Face `config.json`, read into a `ModelConfig`.
///
/// Reads the fields transformers' own configuration classes write, for the families distilld runs:
/// GPT-2 (`n_embd`, `n_layer`, `n_head`, `n_inner`, `n_positions`, `layer_norm_epsilon`,
/// `activation_function`) and Llama, Qwen2 and Mistral (`hidden_size`, `num_hidden_layers`,
/// `num_attention_heads`, `num_key_value_heads`, `head_dim`, `intermediate_size`,
/// `max_position_embeddings`, `rms_norm_eps`, `hidden_act`, `attention_bias`, `sliding_window`),
/// with RoPE described either as transformers 4 wrote it (`rope_theta` and `rope_scaling`) or as
/// transformers 5 does (`rope_parameters` holding `rope_type`, `rope_theta` and the scaling fields).
/// Defaults are transformers' defaults for the model type. Anything distilld would compute
/// differently from transformers (another activation, a RoPE type it lacks, sliding windows on
/// some layers only) is refused with the field named, rather than run wrongly.
public struct HuggingFaceConfig: Sendable {
    public let model: ModelConfig
    /// `model_type` as written.
    public let modelType: String
    public let bosTokenId: Int?
    /// `eos_token_id`, an integer or a list in config.json.
    public let eosTokenIds: [Int]

    /// Parses `json`, the contents of `file` (named in errors).
    public init(json: JSON, file: String) throws {
        let r = FieldReader(json: json, file: file)
        guard json.isObject else {
            throw ModelError(.badConfig, "\(file): the configuration is \(json.kindDescription), not an object", file: file)
        }
        guard let type = try r.string("model_type") else {
            throw ModelError(
                .badConfig, "\(file): 'model_type' is missing; supported: \(Self.supportedList)", file: file, field: "model_type")
        }
        guard let architecture = Architecture(rawValue: type) else {
            throw ModelError(
                .unknownArchitecture,
                "\(file): model_type '\(type)' is not supported; supported: \(Self.supportedList)", file: file,
                field: "model_type")
        }
        modelType = type
        model = try architecture == .gpt2 ? Self.gpt2(r) : Self.llamaFamily(r, architecture)
        bosTokenId = try r.intOrList("bos_token_id").first
        eosTokenIds = try r.intOrList("eos_token_id")
        try Self.validate(model, r)
    }

    /// The model types distilld runs, for error messages.
    public static var supportedList: String { Architecture.allCases.map(\.rawValue).joined(separator: ", ") }

    private static func gpt2(_ r: FieldReader) throws -> ModelConfig {
        let hidden = try r.positive("n_embd")
        let heads = try r.positive("n_head")
        guard hidden % heads == 0 else {
            throw r.error("n_embd", "n_embd \(hidden) is not a multiple of n_head \(heads)")
        }
        let activation = try r.string("activation_function") ?? "gelu_new"
        // transformers' "gelu_new" and "gelu_pytorch_tanh" are the same tanh approximation.
        guard activation == "gelu_new" || activation == "gelu_pytorch_tanh" else {
            throw r.error(
                "activation_function", "activation_function '\(activation)' is not supported; distilld runs GPT-2's gelu_new")
        }
        if try r.bool("scale_attn_by_inverse_layer_idx") == true {
            throw r.error("scale_attn_by_inverse_layer_idx", "scale_attn_by_inverse_layer_idx is not supported")
        }
        if try r.bool("scale_attn_weights") == false {
            throw r.error("scale_attn_weights", "scale_attn_weights false is not supported")
        }
        if try r.bool("add_cross_attention") == true {
            throw r.error("add_cross_attention", "add_cross_attention (an encoder–decoder GPT-2) is not supported")
        }
        let positions = try r.int("n_positions") ?? r.int("n_ctx") ?? 1024
        return ModelConfig(
            architecture: .gpt2, vocabSize: try r.positive("vocab_size"), hiddenSize: hidden, layers: try r.positive("n_layer"),
            heads: heads, kvHeads: heads, headDim: hidden / heads, intermediateSize: try r.int("n_inner") ?? 4 * hidden,
            maxPositions: positions, normEpsilon: Float(try r.double("layer_norm_epsilon") ?? 1e-5),
            tiedEmbeddings: try r.bool("tie_word_embeddings") ?? true)
    }

    private static func llamaFamily(_ r: FieldReader, _ architecture: Architecture) throws -> ModelConfig {
        let hidden = try r.positive("hidden_size")
        let heads = try r.positive("num_attention_heads")
        let kvHeads = try r.int("num_key_value_heads") ?? heads
        guard kvHeads > 0, heads % kvHeads == 0 else {
            throw r.error("num_key_value_heads", "num_attention_heads \(heads) is not a multiple of num_key_value_heads \(kvHeads)")
        }
        let headDim =
            try r.int("head_dim")
            ?? {
                guard hidden % heads == 0 else {
                    throw r.error(
                        "hidden_size", "hidden_size \(hidden) is not a multiple of num_attention_heads \(heads), and head_dim is not given")
                }
                return hidden / heads
            }()
        let activation = try r.string("hidden_act") ?? "silu"
        guard activation == "silu" else {
            throw r.error("hidden_act", "hidden_act '\(activation)' is not supported; distilld runs SwiGLU with silu")
        }
        if try r.bool("mlp_bias") == true {
            throw r.error("mlp_bias", "mlp_bias true is not supported")
        }
        let (theta, scaling) = try rope(r)
        let attentionBias: Bool
        switch architecture {
        case .qwen2: attentionBias = true
        case .llama: attentionBias = try r.bool("attention_bias") ?? false
        default: attentionBias = false
        }
        return ModelConfig(
            architecture: architecture, vocabSize: try r.positive("vocab_size"), hiddenSize: hidden,
            layers: try r.positive("num_hidden_layers"), heads: heads, kvHeads: kvHeads, headDim: headDim,
            intermediateSize: try r.positive("intermediate_size"),
            maxPositions: try r.int("max_position_embeddings") ?? (architecture == .mistral ? 131_072 : 2048),
            normEpsilon: Float(try r.double("rms_norm_eps") ?? 1e-6), ropeTheta: theta, ropeScaling: scaling,
            tiedEmbeddings: try r.bool("tie_word_embeddings") ?? false, attentionBias: attentionBias,
            slidingWindow: try slidingWindow(r, architecture))
    }

    /// RoPE θ and scaling from `rope_parameters` (transformers 5) or `rope_theta` + `rope_scaling` (4).
    private static func rope(_ r: FieldReader) throws -> (Double, RopeScaling?) {
        let field: String
        let params: FieldReader?
        if let p = try r.object("rope_parameters") {
            field = "rope_parameters"
            params = p
        } else {
            field = "rope_scaling"
            params = try r.object("rope_scaling")
        }
        let theta = try params?.double("rope_theta") ?? r.double("rope_theta") ?? 10_000
        guard theta > 0 else { throw r.error("rope_theta", "rope_theta \(theta) is not positive") }
        let partial = try params?.double("partial_rotary_factor") ?? r.double("partial_rotary_factor") ?? 1
        guard partial == 1 else {
            throw r.error("partial_rotary_factor", "partial_rotary_factor \(partial) is not supported; RoPE over the whole head is")
        }
        guard let params else { return (theta, nil) }
        let type = try params.string("rope_type") ?? params.string("type") ?? "default"
        switch type {
        case "default":
            return (theta, nil)
        case "linear":
            let factor = try params.double("factor") ?? 1
            guard factor > 0 else { throw r.error(field, "\(field).factor \(factor) is not positive") }
            return (theta, .linear(factor: factor))
        case "llama3":
            guard let factor = try params.double("factor"), let low = try params.double("low_freq_factor"),
                let high = try params.double("high_freq_factor"),
                let original = try params.int("original_max_position_embeddings")
            else {
                throw r.error(
                    field,
                    "\(field) of rope_type llama3 needs factor, low_freq_factor, high_freq_factor and original_max_position_embeddings")
            }
            guard factor > 0, low > 0, high > low, original > 0 else {
                throw r.error(field, "\(field): llama3 scaling needs factor > 0 and high_freq_factor > low_freq_factor > 0")
            }
            return (
                theta, .llama3(factor: factor, lowFrequencyFactor: low, highFrequencyFactor: high, originalMaxPositions: original)
            )
        default:
            throw r.error(field, "\(field): rope_type '\(type)' is not supported; supported: default, linear, llama3")
        }
    }

    /// The sliding window, when every layer has one; refused when only some layers do.
    private static func slidingWindow(_ r: FieldReader, _ architecture: Architecture) throws -> Int? {
        let window: Int?
        switch architecture {
        case .mistral:
            window = try r.int("sliding_window")
        case .qwen2:
            guard try r.bool("use_sliding_window") == true else { return nil }
            window = try r.int("sliding_window")
            let layers = try r.positive("num_hidden_layers")
            // transformers slides the window on layers i ≥ max_window_layers.
            let from = try r.int("max_window_layers") ?? 28
            if from >= layers { return nil }
            if from > 0 {
                throw r.error(
                    "max_window_layers", "a sliding window on layers \(from) and up only (max_window_layers) is not supported")
            }
        default:
            window = nil
        }
        if let kinds = try r.stringList("layer_types"), Set(kinds).count > 1 {
            throw r.error(
                "layer_types", "layer_types mixes \(Set(kinds).sorted().joined(separator: " and ")); one kind for all layers is supported")
        }
        if let window, window <= 0 { throw r.error("sliding_window", "sliding_window \(window) is not positive") }
        return window
    }

    private static func validate(_ c: ModelConfig, _ r: FieldReader) throws {
        guard c.intermediateSize > 0 else {
            throw r.error("intermediate_size", "the intermediate size \(c.intermediateSize) is not positive")
        }
        guard c.maxPositions > 0 else { throw r.error("max_position_embeddings", "the context length \(c.maxPositions) is not positive") }
        guard c.headDim > 0 else { throw r.error("head_dim", "head_dim \(c.headDim) is not positive") }
        if c.architecture != .gpt2, c.headDim % 2 != 0 {
            throw r.error("head_dim", "head_dim \(c.headDim) is odd; RoPE rotates pairs of dimensions")
        }
        guard c.normEpsilon >= 0, c.normEpsilon.isFinite else {
            throw r.error(
                c.architecture == .gpt2 ? "layer_norm_epsilon" : "rms_norm_eps",
                "the norm epsilon \(c.normEpsilon) is not a finite non-negative number")
        }
    }
}

/// Typed reads of an object's fields, with errors naming the file and the field.
struct FieldReader {
    let json: JSON
    let file: String
    /// The enclosing field ("rope_parameters"), for errors about nested fields.
    var prefix: String = ""

    func error(_ field: String, _ message: String) -> ModelError {
        ModelError(.badConfig, "\(file): \(message)", file: file, field: field)
    }

    private func value(_ key: String) -> JSON? {
        guard let v = json[key], !v.isNull else { return nil }
        return v
    }

    private func wrong(_ key: String, _ v: JSON, _ wanted: String) -> ModelError {
        error(prefix + key, "'\(prefix + key)' is \(v.kindDescription), not \(wanted)")
    }

    func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard let s = v.stringValue else { throw wrong(key, v, "a string") }
        return s
    }

    func int(_ key: String) throws -> Int? {
        guard let v = value(key) else { return nil }
        if let i = v.intValue { return i }
        // 4096.0 is an integer in JSON written by some tools.
        if let d = v.doubleValue, d == d.rounded(), abs(d) < 1e15 { return Int(d) }
        throw wrong(key, v, "an integer")
    }

    func positive(_ key: String) throws -> Int {
        guard let i = try int(key) else { throw error(prefix + key, "'\(prefix + key)' is missing") }
        guard i > 0 else { throw error(prefix + key, "'\(prefix + key)' is \(i), not a positive integer") }
        return i
    }

    func double(_ key: String) throws -> Double? {
        guard let v = value(key) else { return nil }
        guard v.isNumber, let d = v.doubleValue else { throw wrong(key, v, "a number") }
        return d
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = value(key) else { return nil }
        guard let b = v.boolValue else { throw wrong(key, v, "true or false") }
        return b
    }

    func object(_ key: String) throws -> FieldReader? {
        guard let v = value(key) else { return nil }
        guard v.isObject else { throw wrong(key, v, "an object") }
        return FieldReader(json: v, file: file, prefix: prefix + key + ".")
    }

    func intOrList(_ key: String) throws -> [Int] {
        guard let v = value(key) else { return [] }
        if let i = v.intValue { return [i] }
        guard let items = v.arrayValue else { throw wrong(key, v, "an integer or a list of integers") }
        return try items.map {
            guard let i = $0.intValue else { throw wrong(key, v, "an integer or a list of integers") }
            return i
        }
    }

    func stringList(_ key: String) throws -> [String]? {
        guard let v = value(key) else { return nil }
        guard let items = v.arrayValue else { throw wrong(key, v, "a list of strings") }
        return try items.map {
            guard let s = $0.stringValue else { throw wrong(key, v, "a list of strings") }
            return s
        }
    }
}
