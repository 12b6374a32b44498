import DistillStore
import DistillTokenize
import Foundation

/// The model configuration and the tokenizer, as a GGUF file's metadata describes them.
///
/// Keys follow llama.cpp's converter: `<arch>.context_length`, `<arch>.embedding_length`,
/// `<arch>.block_count`, `<arch>.feed_forward_length`, `<arch>.attention.head_count(_kv)`,
/// `<arch>.attention.layer_norm(_rms)_epsilon`, `<arch>.rope.freq_base`,
/// `<arch>.rope.scaling.*`, and `tokenizer.ggml.*`. A key of the wrong type, a missing required
/// key or an inconsistent value is refused naming the key.
struct GGUFMetadata {
    let file: GGUFFile

    var path: String { file.path }

    func refusal(_ message: String) -> StoreError { ggufError(.malformedHeader, path, message) }

    func refusal(_ code: StoreError.Code, _ message: String) -> StoreError { ggufError(code, path, message) }

    func value(_ key: String) -> GGUFValue? { file.metadata[key] }

    /// The value of `key` as `read` gives it, nil when the key is absent, refused naming the
    /// key and its type when `read` gives nothing.
    func typed<T>(_ key: String, _ read: (GGUFValue) -> T?, _ what: String) throws -> T? {
        guard let v = value(key) else { return nil }
        guard let t = read(v) else { throw refusal("metadata '\(key)' is \(v.typeName), not \(what)") }
        return t
    }

    func string(_ key: String) throws -> String? { try typed(key, \.string, "a string") }

    /// A non-negative integer of any integer type.
    func count(_ key: String) throws -> Int? {
        guard let v = value(key) else { return nil }
        guard let n = v.int else {
            if case .array = v {
                throw refusal("metadata '\(key)' is \(v.typeName), a value per layer; distilld runs models with one value for all layers")
            }
            throw refusal("metadata '\(key)' is \(v.typeName), not an integer")
        }
        guard n >= 0 else { throw refusal("metadata '\(key)' is \(n), not a count") }
        // Sizes multiply into shapes: bounding each keeps every product far from overflow.
        guard n <= Int(Int32.max) else { throw refusal("metadata '\(key)' is \(n), larger than any model distilld can run") }
        return n
    }

    func positive(_ key: String) throws -> Int {
        guard let n = try count(key) else { throw refusal("metadata '\(key)' is missing; a model needs it") }
        guard n > 0 else { throw refusal("metadata '\(key)' is 0; it must be positive") }
        return n
    }

    func number(_ key: String) throws -> Double? {
        guard let v = value(key) else { return nil }
        guard let x = v.double, x.isFinite else { throw refusal("metadata '\(key)' is \(v.typeName) \(v), not a finite number") }
        return x
    }

    func bool(_ key: String) throws -> Bool? { try typed(key, \.bool, "a bool") }

    func array(_ key: String) throws -> GGUFArray? { try typed(key, \.arrayValue, "an array") }

    // MARK: - Architecture

    /// The family named by `general.architecture`.
    func architecture() throws -> Architecture {
        guard let name = try string("general.architecture") else {
            throw refusal("metadata 'general.architecture' is missing; it names the model family")
        }
        guard let a = Architecture(rawValue: name) else {
            let supported = Architecture.allCases.map(\.rawValue).joined(separator: ", ")
            throw ModelError(
                .unknownArchitecture,
                "\(path): general.architecture is '\(name)', which distilld does not run; the supported ones are \(supported)",
                file: path, field: "general.architecture")
        }
        return a
    }

    // MARK: - Configuration

    /// The configuration. `vocabSize` is the token list's length (checked against
    /// `<arch>.vocab_size` when present); the tensors are checked against it afterwards.
    func config(architecture a: Architecture, vocabSize: Int, tensors: (String) -> GGUFTensorInfo?) throws -> ModelConfig {
        let p = a.rawValue + "."
        let hidden = try positive(p + "embedding_length")
        let layers = try positive(p + "block_count")
        guard layers <= file.tensors.count else {
            throw refusal(
                .shapeMismatch,
                "\(p)block_count is \(layers) but the file holds only \(file.tensors.count) tensors; every layer needs several")
        }
        let heads = try positive(p + "attention.head_count")
        let kvHeads = try count(p + "attention.head_count_kv") ?? heads
        guard kvHeads > 0, heads % kvHeads == 0 else {
            throw refusal("\(p)attention.head_count_kv is \(kvHeads); it must divide \(p)attention.head_count (\(heads))")
        }
        let headDim: Int
        if let k = try count(p + "attention.key_length") {
            headDim = k
        } else {
            guard hidden % heads == 0 else {
                throw refusal("\(p)embedding_length \(hidden) is not a multiple of \(p)attention.head_count \(heads)")
            }
            headDim = hidden / heads
        }
        if let v = try count(p + "attention.value_length"), v != headDim {
            throw refusal("\(p)attention.value_length \(v) differs from the key length \(headDim); distilld needs them equal")
        }
        guard headDim > 0 else { throw refusal("the head dimension is 0") }
        if let stated = try count(p + "vocab_size"), stated != vocabSize {
            throw refusal(
                .shapeMismatch, "\(p)vocab_size is \(stated) but tokenizer.ggml.tokens holds \(vocabSize) tokens; they must agree")
        }
        let epsilonKey = p + (a == .gpt2 ? "attention.layer_norm_epsilon" : "attention.layer_norm_rms_epsilon")
        guard let epsilon = try number(epsilonKey) else {
            throw refusal("metadata '\(epsilonKey)' is missing; a model needs its normalisation epsilon")
        }
        guard epsilon >= 0 else { throw refusal("\(epsilonKey) is \(epsilon); it must not be negative") }
        var config = ModelConfig(
            architecture: a, vocabSize: vocabSize, hiddenSize: hidden, layers: layers, heads: heads, kvHeads: kvHeads,
            headDim: headDim, intermediateSize: try positive(p + "feed_forward_length"),
            maxPositions: try positive(p + "context_length"), normEpsilon: Float(epsilon),
            tiedEmbeddings: tensors("output.weight") == nil,
            attentionBias: a != .gpt2 && tensors("blk.0.attn_q.bias") != nil)
        if a != .gpt2 {
            guard headDim % 2 == 0 else { throw refusal("the head dimension \(headDim) is odd; rotary embeddings need it even") }
            if let rotary = try count(p + "rope.dimension_count"), rotary != headDim {
                throw refusal(
                    "\(p)rope.dimension_count is \(rotary) but the head dimension is \(headDim); "
                        + "distilld rotates whole heads (partial rotary embeddings are not supported)")
            }
            let theta = try number(p + "rope.freq_base") ?? 10_000
            guard theta > 0 else { throw refusal("\(p)rope.freq_base is \(theta); it must be positive") }
            config.ropeTheta = theta
            config.ropeScaling = try ropeScaling(prefix: p, config: config, tensors: tensors)
        }
        return config
    }

    /// RoPE scaling: `rope.scaling.type` "linear" (or the older `rope.scale_linear`), or Llama 3's
    /// band-wise scaling, which llama.cpp's converter stores not as metadata but as the tensor
    /// `rope_freqs.weight` holding each frequency's divisor; its parameters are recovered from
    /// those divisors and the recovered scheme is checked to reproduce every one of them.
    func ropeScaling(prefix p: String, config: ModelConfig, tensors: (String) -> GGUFTensorInfo?) throws -> RopeScaling? {
        var scaling: RopeScaling?
        let type = try string(p + "rope.scaling.type")
        switch type {
        case nil, "none": break
        case "linear":
            guard let factor = try number(p + "rope.scaling.factor"), factor > 0 else {
                throw refusal("\(p)rope.scaling.type is linear but \(p)rope.scaling.factor is missing or not positive")
            }
            scaling = .linear(factor: factor)
        case let other?:
            throw refusal("\(p)rope.scaling.type is '\(other)'; distilld supports none, linear and Llama 3's scaling")
        }
        if type == nil, let factor = try number(p + "rope.scale_linear"), factor != 1 {
            guard factor > 0 else { throw refusal("\(p)rope.scale_linear is \(factor); it must be positive") }
            scaling = .linear(factor: factor)
        }
        if let t = tensors("rope_freqs.weight") {
            guard scaling == nil else {
                throw refusal("the file holds both \(p)rope.scaling metadata and rope_freqs.weight; distilld cannot apply both")
            }
            let original = try count(p + "rope.scaling.original_context_length") ?? 8192
            scaling = try llama3Scaling(t, config: config, originalMaxPositions: original)
        }
        return scaling
    }

    /// Llama 3's scaling from the per-frequency divisors `f_i` of `rope_freqs.weight`.
    ///
    /// With inverse frequency `ω_i = θ^(−2i/d)` and wavelength `λ_i = 2π/ω_i`, the scheme divides
    /// `ω_i` by 1 when `λ_i < L/high`, by `factor` when `λ_i > L/low`, and otherwise by
    /// `1 / ((1 − s)/factor + s)` with `s = (L/λ_i − low)/(high − low)`. So `factor` is the largest
    /// divisor, and on the band in between `s` is affine in `1/λ_i`: a line through the band's
    /// end points gives `L/(high − low)` and `−low/(high − low)`; with `L` taken as the original
    /// context (8192 when the file does not say), `low` and `high` follow.
    func llama3Scaling(_ t: GGUFTensorInfo, config: ModelConfig, originalMaxPositions: Int) throws -> RopeScaling {
        let n = config.headDim / 2
        guard t.type == .f32, t.elementCount == n else {
            throw ggufError(
                .shapeMismatch, path, tensor: "rope_freqs.weight",
                "it holds \(t.elementCount) \(t.type.name) values; Llama 3's rope scaling needs \(n) F32 ones (half the head dimension)")
        }
        let raw = file.bytes(of: t)
        let divisors = (0..<n).map { Double(Float(bitPattern: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        guard divisors.allSatisfy({ $0.isFinite && $0 >= 1 }) else {
            throw ggufError(.malformedHeader, path, tensor: "rope_freqs.weight", "its frequency divisors must be finite and at least 1")
        }
        let factor = divisors.max() ?? 1
        let inverseWavelength = (0..<n).map { 1 / (2 * Double.pi / pow(config.ropeTheta, -2 * Double($0) / Double(config.headDim))) }
        let tolerance = 1e-5
        // The band where the divisor lies strictly between 1 and factor.
        let band = (0..<n).filter { divisors[$0] > 1 + tolerance && divisors[$0] < factor * (1 - tolerance) }
        let length = Double(originalMaxPositions)
        var low = 1.0
        var high = 4.0
        func s(_ i: Int) -> Double { (1 / divisors[i] - 1 / factor) / (1 - 1 / factor) }
        if band.count >= 2, let a = band.first, let b = band.last {
            let slope = (s(a) - s(b)) / (inverseWavelength[a] - inverseWavelength[b])
            let intercept = s(a) - slope * inverseWavelength[a]
            guard slope > 0 else {
                throw ggufError(
                    .malformedHeader, path, tensor: "rope_freqs.weight", "its frequency divisors do not follow Llama 3's rope scaling")
            }
            let width = length / slope
            low = -intercept * width
            high = low + width
        } else if factor > 1 {
            // Too few points in the band to fit: Llama 3's published bounds, checked below.
            low = 1
            high = 4
        }
        let scaling = RopeScaling.llama3(
            factor: factor, lowFrequencyFactor: low, highFrequencyFactor: high, originalMaxPositions: originalMaxPositions)
        for i in 0..<n {
            let wavelength = 1 / inverseWavelength[i]
            let expected: Double
            if factor == 1 || wavelength < length / high {
                expected = 1
            } else if wavelength > length / low {
                expected = factor
            } else {
                let smooth = (length / wavelength - low) / (high - low)
                expected = 1 / ((1 - smooth) / factor + smooth)
            }
            guard abs(expected - divisors[i]) <= 1e-4 * expected else {
                throw ggufError(
                    .malformedHeader, path, tensor: "rope_freqs.weight",
                    "its frequency divisor \(i) is \(divisors[i]) where Llama 3's rope scaling (factor \(factor), low \(low), "
                        + "high \(high), original context \(originalMaxPositions)) gives \(expected); distilld supports no other scheme")
            }
        }
        return scaling
    }

    // MARK: - Tokenizer

    /// `tokenizer.ggml.*` and `tokenizer.chat_template`.
    func tokenizer() throws -> GGUFTokenizerData {
        guard let model = try string("tokenizer.ggml.model") else {
            throw refusal("metadata 'tokenizer.ggml.model' is missing; distilld reads the tokenizer from the file")
        }
        guard let tokenArray = try array("tokenizer.ggml.tokens") else {
            throw refusal("metadata 'tokenizer.ggml.tokens' is missing; distilld reads the vocabulary from the file")
        }
        guard let tokens = tokenArray.strings else {
            throw refusal("metadata 'tokenizer.ggml.tokens' is an array of \(tokenArray.elementTypeName), not of string")
        }
        guard !tokens.isEmpty else { throw refusal("metadata 'tokenizer.ggml.tokens' is empty") }
        var t = GGUFTokenizerData(model: model, tokens: tokens)
        t.pre = try string("tokenizer.ggml.pre")
        if let a = try array("tokenizer.ggml.scores") {
            guard let scores = a.floats else { throw refusal("tokenizer.ggml.scores is an array of \(a.elementTypeName), not of float32") }
            guard scores.count == tokens.count else {
                throw refusal("tokenizer.ggml.scores holds \(scores.count) values for \(tokens.count) tokens")
            }
            t.scores = scores
        }
        if let a = try array("tokenizer.ggml.token_type") {
            guard let types = a.ints, types.allSatisfy({ Int32(exactly: $0) != nil }) else {
                throw refusal("tokenizer.ggml.token_type is an array of \(a.elementTypeName), not of int32")
            }
            guard types.count == tokens.count else {
                throw refusal("tokenizer.ggml.token_type holds \(types.count) values for \(tokens.count) tokens")
            }
            t.tokenTypes = types.map { Int32($0) }
        }
        if let a = try array("tokenizer.ggml.merges") {
            guard let merges = a.strings else { throw refusal("tokenizer.ggml.merges is an array of \(a.elementTypeName), not of string") }
            t.merges = merges
        }
        func id(_ key: String) throws -> Int? {
            guard let v = try count(key) else { return nil }
            guard v < tokens.count else {
                throw refusal("metadata '\(key)' is \(v), past the end of the \(tokens.count)-token vocabulary")
            }
            return v
        }
        t.bos = try id("tokenizer.ggml.bos_token_id")
        t.eos = try id("tokenizer.ggml.eos_token_id")
        t.unknown = try id("tokenizer.ggml.unknown_token_id")
        t.padding = try id("tokenizer.ggml.padding_token_id")
        t.addBos = try bool("tokenizer.ggml.add_bos_token")
        t.addEos = try bool("tokenizer.ggml.add_eos_token")
        t.addSpacePrefix = try bool("tokenizer.ggml.add_space_prefix")
        t.chatTemplate = try string("tokenizer.chat_template")
        return t
    }
}
