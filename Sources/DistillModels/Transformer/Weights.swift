/// The tensors a configuration requires, and their gathering from a `WeightSource` with every
/// presence and shape checked before anything is kept.

/// One tensor the configuration requires: its Hugging Face name and its shape, each dimension
/// with the configuration field it comes from (for errors that name both).
struct TensorSpec {
    let name: String
    let dims: [(size: Int, field: String)]
    /// A 2-D linear weight, [out, in] in PyTorch's layout; a source may store it [in, out] (GPT-2's
    /// `Conv1D`) and say so with `WeightBuffer.transposed`.
    let linear: Bool
    let optional: Bool

    init(_ name: String, _ dims: [(Int, String)], linear: Bool = false, optional: Bool = false) {
        self.name = name
        self.dims = dims.map { (size: $0.0, field: $0.1) }
        self.linear = linear
        self.optional = optional
    }

    var shape: [Int] { dims.map(\.size) }
    var described: String { "[" + dims.map { "\($0.field) \($0.size)" }.joined(separator: ", ") + "]" }
}

/// A linear layer y = W·x (+ b): W [outputs, inputs] or, `transposed`, [inputs, outputs].
struct Linear: Sendable {
    let weight: WeightBuffer
    let bias: WeightBuffer?
    let inputs: Int
    let outputs: Int
}

/// LayerNorm (GPT-2, with a bias) or RMSNorm (the Llama family).
struct Norm: Sendable {
    let weight: WeightBuffer
    let bias: WeightBuffer?
}

struct Layer: Sendable {
    let attentionNorm: Norm
    /// GPT-2's fused query–key–value projection, [q | k | v] along its output.
    let qkv: Linear?
    let q: Linear?
    let k: Linear?
    let v: Linear?
    let o: Linear
    let mlpNorm: Norm
    /// GPT-2's c_fc, or the Llama family's up_proj.
    let up: Linear
    /// The Llama family's gate_proj (SwiGLU); nil for GPT-2.
    let gate: Linear?
    let down: Linear
}

/// The specs for `config`, by family.
func tensorSpecs(_ c: ModelConfig) -> [TensorSpec] {
    let H = (c.hiddenSize, c.architecture == .gpt2 ? "n_embd" : "hidden_size")
    let V = (c.vocabSize, "vocab_size")
    let I = (c.intermediateSize, c.architecture == .gpt2 ? "n_inner" : "intermediate_size")
    var specs: [TensorSpec] = []
    switch c.architecture {
    case .gpt2:
        let H3 = (3 * c.hiddenSize, "3×n_embd")
        specs.append(TensorSpec("transformer.wte.weight", [V, H]))
        specs.append(TensorSpec("transformer.wpe.weight", [(c.maxPositions, "n_positions"), H]))
        for i in 0..<c.layers {
            let p = "transformer.h.\(i)."
            specs += [
                TensorSpec(p + "ln_1.weight", [H]), TensorSpec(p + "ln_1.bias", [H]),
                TensorSpec(p + "attn.c_attn.weight", [H3, H], linear: true), TensorSpec(p + "attn.c_attn.bias", [H3]),
                TensorSpec(p + "attn.c_proj.weight", [H, H], linear: true), TensorSpec(p + "attn.c_proj.bias", [H]),
                TensorSpec(p + "ln_2.weight", [H]), TensorSpec(p + "ln_2.bias", [H]),
                TensorSpec(p + "mlp.c_fc.weight", [I, H], linear: true), TensorSpec(p + "mlp.c_fc.bias", [I]),
                TensorSpec(p + "mlp.c_proj.weight", [H, I], linear: true), TensorSpec(p + "mlp.c_proj.bias", [H]),
            ]
        }
        specs += [TensorSpec("transformer.ln_f.weight", [H]), TensorSpec("transformer.ln_f.bias", [H])]
        if !c.tiedEmbeddings { specs.append(TensorSpec("lm_head.weight", [V, H], linear: true)) }
    case .llama, .qwen2, .mistral:
        let Q = (c.heads * c.headDim, "num_attention_heads×head_dim")
        let KV = (c.kvHeads * c.headDim, "num_key_value_heads×head_dim")
        specs.append(TensorSpec("model.embed_tokens.weight", [V, H]))
        for i in 0..<c.layers {
            let p = "model.layers.\(i)."
            specs += [
                TensorSpec(p + "input_layernorm.weight", [H]),
                TensorSpec(p + "self_attn.q_proj.weight", [Q, H], linear: true),
                TensorSpec(p + "self_attn.k_proj.weight", [KV, H], linear: true),
                TensorSpec(p + "self_attn.v_proj.weight", [KV, H], linear: true),
                TensorSpec(p + "self_attn.o_proj.weight", [H, Q], linear: true),
                TensorSpec(p + "post_attention_layernorm.weight", [H]),
                TensorSpec(p + "mlp.gate_proj.weight", [I, H], linear: true),
                TensorSpec(p + "mlp.up_proj.weight", [I, H], linear: true),
                TensorSpec(p + "mlp.down_proj.weight", [H, I], linear: true),
            ]
            if c.attentionBias {
                specs += [
                    TensorSpec(p + "self_attn.q_proj.bias", [Q]), TensorSpec(p + "self_attn.k_proj.bias", [KV]),
                    TensorSpec(p + "self_attn.v_proj.bias", [KV]),
                ]
            }
            // Llama's attention_bias also puts a bias on o_proj; Qwen2's does not. Used when present.
            specs.append(TensorSpec(p + "self_attn.o_proj.bias", [H], optional: !(c.architecture == .llama && c.attentionBias)))
        }
        specs.append(TensorSpec("model.norm.weight", [H]))
        if !c.tiedEmbeddings { specs.append(TensorSpec("lm_head.weight", [V, H], linear: true)) }
    }
    return specs
}

/// A short description of the configuration, for errors about tensors.
func configSummary(_ c: ModelConfig) -> String {
    "\(c.architecture.rawValue), \(c.layers) layers, hidden \(c.hiddenSize), \(c.heads) heads (\(c.kvHeads) key/value) of \(c.headDim), intermediate \(c.intermediateSize), vocab \(c.vocabSize)"
}

/// Reads every tensor `config` requires from `source`, after checking that each is present with
/// the shape the configuration gives (or its transpose, for linear weights stored [in, out]).
/// Presence and shapes are checked from `info` before any tensor is read or converted, so a bad
/// file costs no conversion; the exact layout is checked again on each buffer.
func gatherWeights(_ source: some WeightSource, _ config: ModelConfig) throws -> [String: WeightBuffer] {
    let specs = tensorSpecs(config)
    let held = Set(source.names)
    var missing: [TensorSpec] = []
    for spec in specs {
        guard let info = source.info(spec.name) else {
            if held.contains(spec.name) {
                throw ModelError(
                    .unsupportedDtype, "tensor '\(spec.name)' is stored in a type that cannot be read as float32", tensor: spec.name)
            }
            if !spec.optional { missing.append(spec) }
            continue
        }
        let ok = info.shape == spec.shape || (spec.linear && info.shape == spec.shape.reversed())
        if !ok {
            throw shapeError(spec, info.shape, config)
        }
    }
    if let first = missing.first {
        let more =
            missing.count > 1
            ? " (and \(missing.count - 1) more: \(missing.dropFirst().prefix(3).map { "'\($0.name)'" }.joined(separator: ", "))\(missing.count > 4 ? ", ..." : ""))"
            : ""
        throw ModelError(
            .missingTensor,
            "tensor '\(first.name)' is missing\(more); the configuration (\(configSummary(config))) requires it with shape \(first.described)",
            tensor: first.name, numbers: ["missing": missing.count])
    }
    var buffers: [String: WeightBuffer] = [:]
    for spec in specs where held.contains(spec.name) {
        let buffer = try source.float32(spec.name)
        let expected = buffer.transposed ? Array(spec.shape.reversed()) : spec.shape
        guard buffer.shape == expected, buffer.pointer.count == spec.shape.reduce(1, *) else {
            throw shapeError(spec, buffer.shape, config, transposed: buffer.transposed)
        }
        buffers[spec.name] = buffer
    }
    return buffers
}

private func shapeError(_ spec: TensorSpec, _ actual: [Int], _ config: ModelConfig, transposed: Bool = false) -> ModelError {
    let layout = transposed ? " (stored [in, out])" : ""
    return ModelError(
        .shapeMismatch,
        "tensor '\(spec.name)' has shape \(actual)\(layout) but the configuration (\(configSummary(config))) requires \(spec.shape) = \(spec.described)",
        tensor: spec.name)
}
