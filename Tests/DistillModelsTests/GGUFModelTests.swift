import DistillStore
import Foundation
import Testing

@testable import DistillModels

/// A tiny Llama written in llama.cpp's layout, read back under Hugging Face names.
struct GGUFModelTests {
    let dir = TempDir()

    func load(_ b: GGUFBuilder) throws -> GGUFModel {
        try GGUFModel(path: dir.write("m.gguf", b.bytes))
    }

    func refusal(_ b: GGUFBuilder) -> StoreError? {
        do {
            _ = try load(b)
            return nil
        } catch {
            return error as? StoreError
        }
    }

    @Test func configTokenizerAndWeightsUnderHuggingFaceNames() throws {
        let tiny = TinyLlama()
        let m = try load(tiny.builder())
        let c = m.config
        #expect(c.architecture == .llama)
        #expect(c.vocabSize == 6 && c.hiddenSize == 8 && c.layers == 1 && c.heads == 2 && c.kvHeads == 1 && c.headDim == 4)
        #expect(c.intermediateSize == 12 && c.maxPositions == 64 && c.normEpsilon == 1e-5 && c.ropeTheta == 5000)
        #expect(c.tiedEmbeddings && !c.attentionBias && c.ropeScaling == nil)
        #expect(m.tokenizer.model == "llama" && m.tokenizer.tokens.count == 6 && m.tokenizer.bos == 1 && m.tokenizer.addBos == true)
        #expect(m.tokenizer.tokenTypes == [Int32](repeating: 1, count: 6))
        #expect(Set(m.names) == Set(tiny.weights.keys))
        for (name, (shape, values)) in tiny.weights {
            let w = try m.float32(name)
            #expect(w.shape == shape, "\(name)")
            #expect(Array(w.pointer) == values, "\(name): the stored order must be undone for q and k")
            #expect(m.info(name)?.stored == .f32)
        }
        #expect(m.residentBytes == 4 * (8 * 8 + 4 * 8), "only q and k, reordered, are copied")
        let source: any WeightSource = m
        #expect(source.residentBytes == m.residentBytes)
        #expect(throws: StoreError.self) { try m.float32("lm_head.weight") }
    }

    @Test func anUntiedHeadIsLoaded() throws {
        let m = try load(TinyLlama(tied: false).builder())
        #expect(!m.config.tiedEmbeddings)
        #expect(m.names.last == "lm_head.weight")
    }

    @Test func qwen2RowsAreNotReordered() throws {
        let tiny = TinyLlama()
        var b = tiny.builder(architecture: "qwen2")
        // Write q in Hugging Face order: the Qwen2 converter does not interleave.
        let (shape, values) = tiny.weights["model.layers.0.self_attn.q_proj.weight"]!
        let i = b.tensors.firstIndex { $0.name == "blk.0.attn_q.weight" }!
        b.tensors[i].data = GGUFBuilder.floats(values)
        let m = try load(b)
        #expect(m.config.architecture == .qwen2)
        #expect(Array(try m.float32("model.layers.0.self_attn.q_proj.weight").pointer) == values)
        #expect(shape == [8, 8])
    }

    @Test func refusalsNameTheKeyOrTensor() {
        var b = TinyLlama().builder()
        b.kvs[0] = ("general.architecture", 8, GGUFBuilder.string("mamba"))
        #expect(throws: ModelError.self) { try load(b) }
        do {
            _ = try load(b)
        } catch let error as ModelError {
            #expect(error.code == .unknownArchitecture && error.field == "general.architecture")
            #expect(error.message.contains("'mamba', which distilld does not run; the supported ones are gpt2, llama, qwen2, mistral"))
        } catch {
            Issue.record("threw \(error)")
        }

        b = TinyLlama().builder()
        b.tensors.removeAll { $0.name == "blk.0.ffn_up.weight" }
        var e = refusal(b)
        #expect(e?.tensor == "blk.0.ffn_up.weight" && e?.message.contains("model.layers.0.mlp.up_proj.weight") == true)

        b = TinyLlama().builder()
        b.add(tensor: "blk.0.attn_q_norm.weight", shape: [4], values: [1, 1, 1, 1])
        e = refusal(b)
        #expect(e?.tensor == "blk.0.attn_q_norm.weight" && e?.code == .shapeMismatch)

        b = TinyLlama().builder()
        b.kvs.removeAll { $0.key == "llama.attention.layer_norm_rms_epsilon" }
        #expect(refusal(b)?.message.contains("layer_norm_rms_epsilon' is missing") == true)

        b = TinyLlama().builder()
        b.kvs.removeAll { $0.key == "tokenizer.ggml.tokens" }
        #expect(refusal(b)?.message.contains("tokenizer.ggml.tokens' is missing") == true)

        b = TinyLlama().builder()
        b.add("tokenizer.ggml.eos_token_id", u32: 6)
        #expect(refusal(b)?.message.contains("past the end of the 6-token vocabulary") == true)

        b = TinyLlama().builder()
        b.add("llama.attention.head_count_kv", u32: 3)
        b.kvs.removeAll { $0.key == "llama.attention.head_count_kv" && $0.value == GGUFBuilder.le(UInt32(1)) }
        #expect(refusal(b)?.message.contains("must divide") == true)

        b = TinyLlama().builder()
        b.kvs = b.kvs.map { $0.key == "llama.block_count" ? ($0.key, 10, GGUFBuilder.le(UInt64(1) << 40)) : $0 }
        #expect(refusal(b)?.message.contains("block_count") == true)
    }
}
