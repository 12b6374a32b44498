import Foundation

@testable import DistillModels

/// A fresh temporary directory, removed when the value goes.
final class TempDir: @unchecked Sendable {  // immutable
    let path: String

    init() {
        path = NSTemporaryDirectory() + "distillmodels-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) -> String {
        let p = path + "/" + name
        _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }
}

/// GGUF bytes written field by field, so that a test can make any of them lie.
struct GGUFBuilder {
    struct Tensor {
        var name: String
        /// GGUF order: the row length first.
        var dims: [UInt64]
        var type: UInt32
        var data: [UInt8]
        /// Overrides the offset the builder would give.
        var offset: UInt64?
    }

    var version: UInt32 = 3
    var kvs: [(key: String, type: UInt32, value: [UInt8])] = []
    var tensors: [Tensor] = []
    var alignment = 32
    var tensorCount: UInt64?
    var kvCount: UInt64?

    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func string(_ s: String) -> [UInt8] { le(UInt64(s.utf8.count)) + Array(s.utf8) }
    static func floats(_ v: [Float]) -> [UInt8] { v.flatMap { le($0.bitPattern) } }

    mutating func add(_ key: String, string: String) { kvs.append((key, 8, Self.string(string))) }
    mutating func add(_ key: String, u32: UInt32) { kvs.append((key, 4, Self.le(u32))) }
    mutating func add(_ key: String, f32: Float) { kvs.append((key, 6, Self.le(f32.bitPattern))) }
    mutating func add(_ key: String, bool: Bool) { kvs.append((key, 7, [bool ? 1 : 0])) }
    mutating func add(_ key: String, strings: [String]) {
        kvs.append((key, 9, Self.le(UInt32(8)) + Self.le(UInt64(strings.count)) + strings.flatMap(Self.string)))
    }
    mutating func add(_ key: String, int32s: [Int32]) {
        kvs.append((key, 9, Self.le(UInt32(5)) + Self.le(UInt64(int32s.count)) + int32s.flatMap { Self.le($0) }))
    }

    /// An F32 tensor from values in PyTorch's shape.
    mutating func add(tensor name: String, shape: [Int], values: [Float]) {
        tensors.append(Tensor(name: name, dims: shape.reversed().map { UInt64($0) }, type: 0, data: Self.floats(values)))
    }

    /// Where each tensor's data goes, relative to the data section: packed, each aligned.
    var offsets: [UInt64] {
        var at: UInt64 = 0
        return tensors.map { t in
            defer { at += UInt64((t.data.count + alignment - 1) / alignment * alignment) }
            return t.offset ?? at
        }
    }

    var bytes: [UInt8] {
        var out = Array("GGUF".utf8) + Self.le(version)
        out += Self.le(tensorCount ?? UInt64(tensors.count)) + Self.le(kvCount ?? UInt64(kvs.count))
        for (key, type, value) in kvs { out += Self.string(key) + Self.le(type) + value }
        for (t, offset) in zip(tensors, offsets) {
            out += Self.string(t.name) + Self.le(UInt32(t.dims.count)) + t.dims.flatMap { Self.le($0) }
            out += Self.le(t.type) + Self.le(offset)
        }
        while out.count % alignment != 0 { out.append(0) }
        let start = out.count
        for (t, offset) in zip(tensors, offsets) where !t.data.isEmpty {
            let end = start + Int(offset) + t.data.count
            if out.count < end { out += [UInt8](repeating: 0, count: end - out.count) }
            out.replaceSubrange((start + Int(offset))..<end, with: t.data)
        }
        return out
    }
}

/// A tiny Llama in llama.cpp's layout, F32 throughout, with its Hugging Face weights.
struct TinyLlama {
    let vocab = 6, hidden = 8, layers = 1, heads = 2, kvHeads = 1, ffn = 12
    var headDim: Int { hidden / heads }
    /// Hugging Face name → (shape, values), before llama.cpp's q/k interleaving.
    var weights: [String: ([Int], [Float])] = [:]

    init(tied: Bool = true) {
        var seed: UInt64 = 7
        func values(_ n: Int) -> [Float] {
            (0..<n).map { _ in
                seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Float(Int(seed >> 40) % 2001 - 1000) / 1000
            }
        }
        let h = hidden
        var shapes: [(String, [Int])] = [
            ("model.embed_tokens.weight", [vocab, h]), ("model.norm.weight", [h]),
            ("model.layers.0.input_layernorm.weight", [h]), ("model.layers.0.post_attention_layernorm.weight", [h]),
            ("model.layers.0.self_attn.q_proj.weight", [heads * headDim, h]),
            ("model.layers.0.self_attn.k_proj.weight", [kvHeads * headDim, h]),
            ("model.layers.0.self_attn.v_proj.weight", [kvHeads * headDim, h]),
            ("model.layers.0.self_attn.o_proj.weight", [h, heads * headDim]),
            ("model.layers.0.mlp.gate_proj.weight", [ffn, h]), ("model.layers.0.mlp.up_proj.weight", [ffn, h]),
            ("model.layers.0.mlp.down_proj.weight", [h, ffn]),
        ]
        if !tied { shapes.append(("lm_head.weight", [vocab, h])) }
        for (name, shape) in shapes { weights[name] = (shape, values(shape.reduce(1, *))) }
    }

    static let ggufNames: [String: String] = [
        "model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight",
        "model.layers.0.input_layernorm.weight": "blk.0.attn_norm.weight",
        "model.layers.0.post_attention_layernorm.weight": "blk.0.ffn_norm.weight",
        "model.layers.0.self_attn.q_proj.weight": "blk.0.attn_q.weight", "model.layers.0.self_attn.k_proj.weight": "blk.0.attn_k.weight",
        "model.layers.0.self_attn.v_proj.weight": "blk.0.attn_v.weight",
        "model.layers.0.self_attn.o_proj.weight": "blk.0.attn_output.weight",
        "model.layers.0.mlp.gate_proj.weight": "blk.0.ffn_gate.weight", "model.layers.0.mlp.up_proj.weight": "blk.0.ffn_up.weight",
        "model.layers.0.mlp.down_proj.weight": "blk.0.ffn_down.weight",
    ]

    /// llama.cpp's converter on q/k rows: within each head, the first half's rows and the second
    /// half's rows interleaved (written here from the definition, row by row).
    static func interleave(_ values: [Float], rows: Int, heads: Int) -> [Float] {
        let columns = values.count / rows
        let d = rows / heads
        var out = values
        for head in 0..<heads {
            for i in 0..<(d / 2) {
                for half in 0..<2 {
                    let from = head * d + half * (d / 2) + i
                    let to = head * d + 2 * i + half
                    for c in 0..<columns { out[to * columns + c] = values[from * columns + c] }
                }
            }
        }
        return out
    }

    func builder(architecture: String = "llama") -> GGUFBuilder {
        var b = GGUFBuilder()
        b.add("general.architecture", string: architecture)
        b.add("\(architecture).block_count", u32: UInt32(layers))
        b.add("\(architecture).context_length", u32: 64)
        b.add("\(architecture).embedding_length", u32: UInt32(hidden))
        b.add("\(architecture).feed_forward_length", u32: UInt32(ffn))
        b.add("\(architecture).attention.head_count", u32: UInt32(heads))
        b.add("\(architecture).attention.head_count_kv", u32: UInt32(kvHeads))
        b.add("\(architecture).rope.freq_base", f32: 5000)
        b.add("\(architecture).attention.layer_norm_rms_epsilon", f32: 1e-5)
        b.add("tokenizer.ggml.model", string: "llama")
        b.add("tokenizer.ggml.tokens", strings: (0..<vocab).map { "t\($0)" })
        b.add("tokenizer.ggml.token_type", int32s: [Int32](repeating: 1, count: vocab))
        b.add("tokenizer.ggml.bos_token_id", u32: 1)
        b.add("tokenizer.ggml.add_bos_token", bool: true)
        for (name, (shape, values)) in weights.sorted(by: { $0.key < $1.key }) {
            var stored = values
            if name.contains("q_proj") { stored = Self.interleave(values, rows: shape[0], heads: heads) }
            if name.contains("k_proj") { stored = Self.interleave(values, rows: shape[0], heads: kvHeads) }
            b.add(tensor: Self.ggufNames[name]!, shape: shape, values: stored)
        }
        return b
    }
}
