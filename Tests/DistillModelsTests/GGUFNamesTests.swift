import Testing

@testable import DistillModels

/// The names table read both ways: every tensor a model needs has a llama.cpp name, which
/// maps back to it, and Llama's are the ones llama.cpp's converter writes.
struct GGUFNamesTests {
    @Test(arguments: Architecture.allCases)
    func everyTensorAModelNeedsHasALlamaCppNameThatMapsBack(_ architecture: Architecture) {
        let config = ModelConfig(
            architecture: architecture, vocabSize: 8, hiddenSize: 4, layers: 3, heads: 2, kvHeads: 1, headDim: 2,
            intermediateSize: 6, maxPositions: 16, normEpsilon: 1e-5, tiedEmbeddings: false, attentionBias: architecture != .gpt2)
        for (name, _) in GGUFNames.expected(config, hasOutput: true) {
            let gguf = GGUFNames.gguf(name, architecture: architecture)
            #expect(gguf != name, "\(name) has no llama.cpp name")
            #expect(GGUFNames.target(gguf, architecture: architecture, config: config)?.name == name, "\(gguf)")
        }
    }

    @Test func llamaTensorsHaveTheConvertersNames() {
        for (name, gguf) in TinyLlama.ggufNames { #expect(GGUFNames.gguf(name, architecture: .llama) == gguf) }
        #expect(GGUFNames.gguf("model.layers.12.self_attn.q_proj.bias", architecture: .qwen2) == "blk.12.attn_q.bias")
        #expect(GGUFNames.gguf("transformer.h.1.attn.c_attn.weight", architecture: .gpt2) == "blk.1.attn_qkv.weight")
    }

    @Test func aNameTheFamilyDoesNotHaveStaysAsItIs() {
        for name in [
            "transformer.h.0.ln_1.weight", "model.layers.x.input_layernorm.weight", "model.layers.01.input_layernorm.weight",
            "model.norm.scale", "lm_head",
        ] {
            #expect(GGUFNames.gguf(name, architecture: .llama) == name)
        }
        #expect(GGUFNames.gguf("model.embed_tokens.weight", architecture: .gpt2) == "model.embed_tokens.weight")
    }
}
