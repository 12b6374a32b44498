/// llama.cpp's tensor names and their Hugging Face counterparts.
///
/// llama.cpp names tensors per role (`blk.3.attn_q.weight`); transformers names them per module
/// path (`model.layers.3.self_attn.q_proj.weight`). The tables below are the ones llama.cpp's
/// converter applies, read backwards, for the families distilld runs.
enum GGUFNames {
    /// What a GGUF tensor becomes.
    struct Target: Equatable {
        /// The Hugging Face name.
        var name: String
        /// Query or key rows that llama.cpp's converter reordered, and over how many heads
        /// (`heads` for the query, `kvHeads` for the key).
        var permutedHeads: Int?
    }

    /// The Hugging Face name of a GGUF tensor, or nil when the family has no such tensor.
    static func target(_ gguf: String, architecture: Architecture, config: ModelConfig) -> Target? {
        let parts = gguf.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard let suffix = parts.last, suffix == "weight" || suffix == "bias" else { return nil }
        let llamaShape = architecture != .gpt2
        if parts.count == 2 {
            let module: String?
            switch (parts[0], llamaShape) {
            case ("token_embd", true): module = "model.embed_tokens"
            case ("output_norm", true): module = "model.norm"
            case ("token_embd", false): module = "transformer.wte"
            case ("position_embd", false): module = "transformer.wpe"
            case ("output_norm", false): module = "transformer.ln_f"
            case ("output", _): module = "lm_head"
            default: module = nil
            }
            return module.map { Target(name: "\($0).\(suffix)") }
        }
        guard parts.count == 4, parts[0] == "blk", let layer = Int(parts[1]), String(layer) == parts[1], layer >= 0 else {
            return nil
        }
        let role = parts[2]
        if llamaShape {
            let module: String
            switch role {
            case "attn_norm": module = "input_layernorm"
            case "attn_q": module = "self_attn.q_proj"
            case "attn_k": module = "self_attn.k_proj"
            case "attn_v": module = "self_attn.v_proj"
            case "attn_output": module = "self_attn.o_proj"
            case "ffn_norm": module = "post_attention_layernorm"
            case "ffn_gate": module = "mlp.gate_proj"
            case "ffn_up": module = "mlp.up_proj"
            case "ffn_down": module = "mlp.down_proj"
            default: return nil
            }
            // Only the Llama converter permutes (Qwen2's does not): rows of each head are
            // interleaved as (pair, half) instead of (half, pair), for llama.cpp's RoPE.
            var heads: Int?
            if architecture == .llama || architecture == .mistral {
                if role == "attn_q" { heads = config.heads }
                if role == "attn_k" { heads = config.kvHeads }
            }
            return Target(name: "model.layers.\(layer).\(module).\(suffix)", permutedHeads: heads)
        }
        let module: String
        switch role {
        case "attn_norm": module = "ln_1"
        case "attn_qkv": module = "attn.c_attn"
        case "attn_output": module = "attn.c_proj"
        case "ffn_norm": module = "ln_2"
        case "ffn_up": module = "mlp.c_fc"
        case "ffn_down": module = "mlp.c_proj"
        default: return nil
        }
        return Target(name: "transformer.h.\(layer).\(module).\(suffix)")
    }

    /// Every tensor a model of this configuration needs, by Hugging Face name, with its shape in
    /// PyTorch order. GPT-2's linear weights are listed [out, in]: the GGUF converter transposed
    /// them from `Conv1D`'s [in, out].
    static func expected(_ c: ModelConfig, hasOutput: Bool) -> [(name: String, shape: [Int])] {
        var out: [(String, [Int])] = []
        let h = c.hiddenSize
        if c.architecture == .gpt2 {
            out += [("transformer.wte.weight", [c.vocabSize, h]), ("transformer.wpe.weight", [c.maxPositions, h])]
            for l in 0..<c.layers {
                let p = "transformer.h.\(l)."
                out += [
                    (p + "ln_1.weight", [h]), (p + "ln_1.bias", [h]),
                    (p + "attn.c_attn.weight", [3 * h, h]), (p + "attn.c_attn.bias", [3 * h]),
                    (p + "attn.c_proj.weight", [h, h]), (p + "attn.c_proj.bias", [h]),
                    (p + "ln_2.weight", [h]), (p + "ln_2.bias", [h]),
                    (p + "mlp.c_fc.weight", [c.intermediateSize, h]), (p + "mlp.c_fc.bias", [c.intermediateSize]),
                    (p + "mlp.c_proj.weight", [h, c.intermediateSize]), (p + "mlp.c_proj.bias", [h]),
                ]
            }
            out += [("transformer.ln_f.weight", [h]), ("transformer.ln_f.bias", [h])]
        } else {
            let q = c.heads * c.headDim
            let kv = c.kvHeads * c.headDim
            out.append(("model.embed_tokens.weight", [c.vocabSize, h]))
            for l in 0..<c.layers {
                let p = "model.layers.\(l)."
                out += [
                    (p + "input_layernorm.weight", [h]),
                    (p + "self_attn.q_proj.weight", [q, h]), (p + "self_attn.k_proj.weight", [kv, h]),
                    (p + "self_attn.v_proj.weight", [kv, h]), (p + "self_attn.o_proj.weight", [h, q]),
                    (p + "post_attention_layernorm.weight", [h]),
                    (p + "mlp.gate_proj.weight", [c.intermediateSize, h]), (p + "mlp.up_proj.weight", [c.intermediateSize, h]),
                    (p + "mlp.down_proj.weight", [h, c.intermediateSize]),
                ]
                if c.attentionBias {
                    out += [
                        (p + "self_attn.q_proj.bias", [q]), (p + "self_attn.k_proj.bias", [kv]), (p + "self_attn.v_proj.bias", [kv]),
                    ]
                }
            }
            out.append(("model.norm.weight", [h]))
        }
        if hasOutput { out.append(("lm_head.weight", [c.vocabSize, h])) }
        return out
    }
}
