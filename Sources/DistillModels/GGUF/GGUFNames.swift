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

    /// One family's names: the tensors outside the blocks by their GGUF stem, and a block's
    /// tensors by their role (`blk.3.attn_q` is role `attn_q` of layer 3).
    struct Table {
        /// GGUF stem → Hugging Face module, outside the blocks.
        let outer: [String: String]
        /// What layer `l`'s modules begin with, before `l`.
        let layers: String
        /// GGUF role → Hugging Face module inside a block.
        let roles: [String: String]
    }

    static let gpt2 = Table(
        outer: [
            "token_embd": "transformer.wte", "position_embd": "transformer.wpe", "output_norm": "transformer.ln_f", "output": "lm_head",
        ],
        layers: "transformer.h.",
        roles: [
            "attn_norm": "ln_1", "attn_qkv": "attn.c_attn", "attn_output": "attn.c_proj", "ffn_norm": "ln_2", "ffn_up": "mlp.c_fc",
            "ffn_down": "mlp.c_proj",
        ])

    /// Llama, Qwen2 and Mistral.
    static let llama = Table(
        outer: ["token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"],
        layers: "model.layers.",
        roles: [
            "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
            "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj",
            "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
        ])

    static func table(_ architecture: Architecture) -> Table { architecture == .gpt2 ? gpt2 : llama }

    /// The Hugging Face name of a GGUF tensor, or nil when the family has no such tensor.
    static func target(_ gguf: String, architecture: Architecture, config: ModelConfig) -> Target? {
        let parts = gguf.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard let suffix = parts.last, suffix == "weight" || suffix == "bias" else { return nil }
        let table = table(architecture)
        if parts.count == 2 {
            return table.outer[parts[0]].map { Target(name: "\($0).\(suffix)") }
        }
        guard parts.count == 4, parts[0] == "blk", let layer = Int(parts[1]), String(layer) == parts[1], layer >= 0,
            let module = table.roles[parts[2]]
        else {
            return nil
        }
        // Only the Llama converter permutes (Qwen2's does not): rows of each head are
        // interleaved as (pair, half) instead of (half, pair), for llama.cpp's RoPE.
        var heads: Int?
        if architecture == .llama || architecture == .mistral {
            if parts[2] == "attn_q" { heads = config.heads }
            if parts[2] == "attn_k" { heads = config.kvHeads }
        }
        return Target(name: "\(table.layers)\(layer).\(module).\(suffix)", permutedHeads: heads)
    }

    /// The GGUF name of a Hugging Face name, for messages about missing tensors: `target` read
    /// backwards, or the name itself when the family has no such tensor.
    static func gguf(_ name: String, architecture: Architecture) -> String {
        guard let dot = name.lastIndex(of: ".") else { return name }
        let stem = name[..<dot]
        let suffix = name[name.index(after: dot)...]
        guard suffix == "weight" || suffix == "bias" else { return name }
        let table = table(architecture)
        if let outer = table.outer.first(where: { $0.value == stem }) { return "\(outer.key).\(suffix)" }
        guard stem.hasPrefix(table.layers) else { return name }
        let inLayer = stem.dropFirst(table.layers.count)
        guard let end = inLayer.firstIndex(of: "."), let layer = Int(inLayer[..<end]), String(layer) == inLayer[..<end],
            let role = table.roles.first(where: { $0.value == inLayer[inLayer.index(after: end)...] })
        else {
            return name
        }
        return "blk.\(layer).\(role.key).\(suffix)"
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
