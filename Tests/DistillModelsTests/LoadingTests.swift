import DistillJSON
import Foundation
import Testing

@testable import DistillModels

/// Loading refuses what it cannot run with errors that name the tensor, the field and both
/// shapes or lengths; configurations are read as transformers writes them.
struct LoadingTests {
    @Test func missingTensorIsNamedWithTheConfiguration() {
        var source = MemorySource(config: llamaConfig())
        source.tensors["model.layers.1.mlp.up_proj.weight"] = nil
        source.tensors["model.norm.weight"] = nil
        #expect {
            try TransformerModel(source: source)
        } throws: { error in
            guard let e = error as? ModelError else { return false }
            return e.code == .missingTensor && e.tensor == "model.layers.1.mlp.up_proj.weight"
                && e.message.contains("and 1 more: 'model.norm.weight'") && e.message.contains("[intermediate_size 36, hidden_size 24]")
        }
    }

    @Test func shapeDisagreementNamesBothShapes() {
        var source = MemorySource(config: llamaConfig())
        source.tensors["model.layers.0.self_attn.k_proj.weight"] = WeightBuffer(
            owning: [Float](repeating: 0, count: 24 * 8), shape: [8, 24])
        #expect {
            try TransformerModel(source: source)
        } throws: { error in
            guard let e = error as? ModelError else { return false }
            return e.code == .shapeMismatch && e.tensor == "model.layers.0.self_attn.k_proj.weight" && e.message.contains("[8, 24]")
                && e.message.contains("[16, 24]")
        }
    }

    /// A linear weight stored [in, out] with `transposed` (GPT-2's Conv1D layout) gives the same
    /// logits as [out, in], through both the matrix (sgemm) and the vector (sgemv) products.
    @Test func transposedWeightsAreReadInPlace() throws {
        let config = llamaConfig()
        let plain = MemorySource(config: config, seed: 3)
        var flipped = plain
        for (name, buffer) in plain.tensors where buffer.shape.count == 2 && name.contains("layers.") {
            let (rows, cols) = (buffer.shape[0], buffer.shape[1])
            var t = [Float](repeating: 0, count: rows * cols)
            for r in 0..<rows { for c in 0..<cols { t[c * rows + r] = buffer.pointer[r * cols + c] } }
            flipped.tensors[name] = WeightBuffer(owning: t, shape: [cols, rows], transposed: true)
        }
        let a = try TransformerModel(source: plain)
        let b = try TransformerModel(source: flipped)
        let tokens = [3, 1, 4, 1, 5, 9, 2, 6]
        #expect(maxAbsDiff(try b.logits(tokens: tokens), try a.logits(tokens: tokens).map(Double.init)) < 1e-5)
        let ca = a.makeCache()
        let cb = b.makeCache()
        for t in tokens {
            #expect(maxAbsDiff(try b.step(t, cache: cb), try a.step(t, cache: ca).map(Double.init)) < 1e-5)
        }
    }

    @Test func contextLongerThanTheModelNamesBothLengths() throws {
        let model = try TransformerModel(source: MemorySource(config: gpt2Config()))
        #expect {
            try model.logits(tokens: Array(repeating: 1, count: 33))
        } throws: { error in
            guard let e = error as? ModelError else { return false }
            return e.code == .contextTooLong && e.isInvalidParams && e.numbers == ["length": 33, "maximum": 32]
        }
        let cache = model.makeCache()
        _ = try model.prefill(Array(repeating: 1, count: 32), cache: cache)
        #expect(throws: ModelError.self) { try model.step(2, cache: cache) }
        #expect(cache.count == 32)
        #expect {
            try model.logits(tokens: [1, 50])
        } throws: { ($0 as? ModelError)?.code == .tokenOutOfRange && ($0 as? ModelError)?.field == "tokens[1]" }
    }

    func parse(_ text: String) throws -> HuggingFaceConfig {
        try HuggingFaceConfig(json: JSON.parse(text), file: "config.json")
    }

    @Test func readsTransformers4And5RopeFields() throws {
        let v4 = try parse(
            """
            {"model_type": "llama", "vocab_size": 100, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "intermediate_size": 128, "max_position_embeddings": 256, "rms_norm_eps": 1e-6,
             "rope_theta": 500000.0, "rope_scaling": {"type": "linear", "factor": 2.0}, "tie_word_embeddings": true}
            """)
        #expect(v4.model.ropeTheta == 500_000 && v4.model.ropeScaling == .linear(factor: 2) && v4.model.headDim == 16)
        #expect(v4.model.kvHeads == 2 && v4.model.tiedEmbeddings && !v4.model.attentionBias)
        let v5 = try parse(
            """
            {"model_type": "qwen2", "vocab_size": 100, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
             "intermediate_size": 128, "head_dim": 32, "eos_token_id": [1, 2],
             "rope_parameters": {"rope_type": "llama3", "rope_theta": 1000.0, "factor": 8, "low_freq_factor": 1,
                                 "high_freq_factor": 4, "original_max_position_embeddings": 64},
             "use_sliding_window": false, "sliding_window": 4096, "layer_types": ["full_attention", "full_attention"]}
            """)
        #expect(v5.model.ropeTheta == 1000 && v5.model.headDim == 32 && v5.model.attentionBias && v5.model.slidingWindow == nil)
        #expect(v5.model.ropeScaling == .llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalMaxPositions: 64))
        #expect(v5.eosTokenIds == [1, 2] && v5.model.kvHeads == 4)
        let gpt2 = try parse(#"{"model_type": "gpt2", "vocab_size": 50, "n_embd": 32, "n_layer": 1, "n_head": 4, "n_inner": null}"#)
        #expect(gpt2.model.intermediateSize == 128 && gpt2.model.maxPositions == 1024 && gpt2.model.tiedEmbeddings)
        let mistral = try parse(
            #"{"model_type": "mistral", "vocab_size": 50, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 4, "intermediate_size": 64, "sliding_window": 4096}"#
        )
        #expect(mistral.model.slidingWindow == 4096)
    }

    @Test func refusesWhatItWouldComputeDifferently() {
        let base = #""vocab_size": 50, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64"#
        let cases: [(String, ModelError.Code, String)] = [
            (#"{"model_type": "bert", \#(base)}"#, .unknownArchitecture, "'bert' is not supported; supported: gpt2, llama, qwen2, mistral"),
            (#"{"model_type": "llama", \#(base), "hidden_act": "gelu"}"#, .badConfig, "hidden_act 'gelu'"),
            (#"{"model_type": "llama", \#(base), "rope_scaling": {"rope_type": "yarn", "factor": 4}}"#, .badConfig, "rope_type 'yarn'"),
            (
                #"{"model_type": "qwen2", \#(base), "use_sliding_window": true, "sliding_window": 8, "max_window_layers": 1}"#, .badConfig,
                "max_window_layers"
            ),
            (#"{"model_type": "llama", \#(base), "num_key_value_heads": 3}"#, .badConfig, "num_key_value_heads 3"),
            (#"{"model_type": "gpt2", "vocab_size": 5, "n_embd": 30, "n_layer": 1, "n_head": 4}"#, .badConfig, "n_embd 30"),
            (
                #"{"model_type": "llama", \#(base.replacingOccurrences(of: "50", with: "\"many\""))}"#, .badConfig,
                "'vocab_size' is a string"
            ),
        ]
        for (text, code, phrase) in cases {
            #expect {
                try parse(text)
            } throws: { error in
                guard let e = error as? ModelError else { return false }
                return e.code == code && e.message.contains(phrase)
            }
        }
    }
}
