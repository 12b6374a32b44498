import Foundation

/// A decoder-only transformer language model that runs: GPT-2, and Llama with the configurations
/// that share its shape (Qwen2, Mistral, SmolLM).
///
/// Built from any `WeightSource` (a Hugging Face directory, a GGUF file): every tensor the
/// configuration requires is checked for presence and shape before anything is kept, and a load
/// that fails leaves nothing behind.
///
/// - GPT-2: learned positions, LayerNorm, gelu_new (the tanh approximation), a fused
///   query–key–value projection, `Conv1D` weights read in their stored [in, out] layout with a
///   transposed BLAS call, the head tied to the token embedding (or `lm_head` when untied).
/// - The Llama family: RMSNorm, RoPE with its θ and linear or llama3 scaling (Hugging Face's
///   `rotate_half` pairing), SwiGLU, grouped-query attention, a tied or untied head, Qwen2's
///   query/key/value biases, Mistral's sliding window.
///
/// Computation: every matrix product is OpenBLAS — `sgemm` for a pass over several tokens (the
/// rows of all sequences in a batch stacked, so each weight is read once per layer), `sgemv` for a
/// decoding step of one token. Causal attention is blocked by 64 query rows, each block one `sgemm`
/// against only the keys it may see, a softmax, and one `sgemm` against the values; in a pass over
/// several tokens the heads are split between the model's own threads (as many as OpenBLAS's),
/// as are the activations. Each public method holds `BLAS.lane` while it runs (see `BLAS` for the
/// threading policy).
///
/// Two entry points: `logits(tokens:)` / `logits(batch:)` for a teacher-forced pass, and a
/// `KVCache` with `prefill` and `step` for generation. Both go through one forward pass; a
/// context longer than `config.maxPositions` is an error naming both lengths.
public final class TransformerModel: Sendable {
    public let config: ModelConfig
    /// Parameters in the weights the pass uses (the tied head counted once).
    public let parameterCount: Int
    /// Bytes of weights held in memory of the process's own (converted from F16/BF16 or dequantised),
    /// as the source counts them after the load; mapped float32 weights are not counted, they are
    /// the page cache's.
    public let residentBytes: Int
    let embedding: WeightBuffer
    let positionEmbedding: WeightBuffer?
    let layers: [Layer]
    let finalNorm: Norm
    let head: Linear
    let rope: Rope?

    /// Query rows per attention block in a multi-token pass.
    static let attentionBlock = 64

    /// Reads and checks every weight `source.config` requires. Throws `ModelError` naming the
    /// tensor (and both shapes) when one is missing or disagrees with the configuration.
    public init(source: some WeightSource) throws {
        let c = source.config
        try Self.validate(c)
        let w = try gatherWeights(source, c)
        config = c
        func linear(_ name: String, bias: String? = nil, inputs: Int, outputs: Int) -> Linear {
            Linear(weight: w[name]!, bias: bias.flatMap { w[$0] }, inputs: inputs, outputs: outputs)
        }
        let H = c.hiddenSize
        let D = c.heads * c.headDim
        let KV = c.kvHeads * c.headDim
        let I = c.intermediateSize
        var layers: [Layer] = []
        switch c.architecture {
        case .gpt2:
            embedding = w["transformer.wte.weight"]!
            positionEmbedding = w["transformer.wpe.weight"]!
            for i in 0..<c.layers {
                let p = "transformer.h.\(i)."
                layers.append(
                    Layer(
                        attentionNorm: Norm(weight: w[p + "ln_1.weight"]!, bias: w[p + "ln_1.bias"]!),
                        qkv: linear(p + "attn.c_attn.weight", bias: p + "attn.c_attn.bias", inputs: H, outputs: D + 2 * KV),
                        q: nil, k: nil, v: nil,
                        o: linear(p + "attn.c_proj.weight", bias: p + "attn.c_proj.bias", inputs: D, outputs: H),
                        mlpNorm: Norm(weight: w[p + "ln_2.weight"]!, bias: w[p + "ln_2.bias"]!),
                        up: linear(p + "mlp.c_fc.weight", bias: p + "mlp.c_fc.bias", inputs: H, outputs: I),
                        gate: nil,
                        down: linear(p + "mlp.c_proj.weight", bias: p + "mlp.c_proj.bias", inputs: I, outputs: H)))
            }
            finalNorm = Norm(weight: w["transformer.ln_f.weight"]!, bias: w["transformer.ln_f.bias"]!)
            rope = nil
        case .llama, .qwen2, .mistral:
            embedding = w["model.embed_tokens.weight"]!
            positionEmbedding = nil
            for i in 0..<c.layers {
                let p = "model.layers.\(i)."
                let b = c.attentionBias
                layers.append(
                    Layer(
                        attentionNorm: Norm(weight: w[p + "input_layernorm.weight"]!, bias: nil),
                        qkv: nil,
                        q: linear(p + "self_attn.q_proj.weight", bias: b ? p + "self_attn.q_proj.bias" : nil, inputs: H, outputs: D),
                        k: linear(p + "self_attn.k_proj.weight", bias: b ? p + "self_attn.k_proj.bias" : nil, inputs: H, outputs: KV),
                        v: linear(p + "self_attn.v_proj.weight", bias: b ? p + "self_attn.v_proj.bias" : nil, inputs: H, outputs: KV),
                        o: linear(p + "self_attn.o_proj.weight", bias: p + "self_attn.o_proj.bias", inputs: D, outputs: H),
                        mlpNorm: Norm(weight: w[p + "post_attention_layernorm.weight"]!, bias: nil),
                        up: linear(p + "mlp.up_proj.weight", inputs: H, outputs: I),
                        gate: linear(p + "mlp.gate_proj.weight", inputs: H, outputs: I),
                        down: linear(p + "mlp.down_proj.weight", inputs: I, outputs: H)))
            }
            finalNorm = Norm(weight: w["model.norm.weight"]!, bias: nil)
            rope = Rope(headDim: c.headDim, theta: c.ropeTheta, scaling: c.ropeScaling)
        }
        self.layers = layers
        if c.tiedEmbeddings {
            head = Linear(weight: embedding, bias: nil, inputs: H, outputs: c.vocabSize)
        } else {
            head = linear("lm_head.weight", inputs: H, outputs: c.vocabSize)
        }
        // Each distinct buffer once: the tied head shares the embedding's.
        var seen = Set<ObjectIdentifier>()
        var parameters = 0
        for buffer in w.values where seen.insert(ObjectIdentifier(buffer)).inserted {
            parameters += buffer.pointer.count
        }
        parameterCount = parameters
        residentBytes = source.residentBytes
    }

    static func validate(_ c: ModelConfig) throws {
        func bad(_ message: String) -> ModelError { ModelError(.badConfig, "the configuration is not runnable: \(message)") }
        for (value, name) in [
            (c.vocabSize, "vocabSize"), (c.hiddenSize, "hiddenSize"), (c.layers, "layers"), (c.heads, "heads"),
            (c.kvHeads, "kvHeads"), (c.headDim, "headDim"), (c.intermediateSize, "intermediateSize"),
            (c.maxPositions, "maxPositions"),
        ] where value <= 0 {
            throw bad("\(name) is \(value)")
        }
        guard c.heads % c.kvHeads == 0 else { throw bad("\(c.heads) heads are not a multiple of \(c.kvHeads) key/value heads") }
        if c.architecture == .gpt2 {
            guard c.heads == c.kvHeads, c.heads * c.headDim == c.hiddenSize else {
                throw bad("GPT-2 needs heads × headDim = hidden size and as many key/value heads as heads")
            }
        } else {
            guard c.headDim % 2 == 0 else { throw bad("headDim \(c.headDim) is odd; RoPE rotates pairs") }
        }
        if let w = c.slidingWindow, w <= 0 { throw bad("slidingWindow \(w) is not positive") }
    }

    // MARK: Public entry points

    /// Logits [T, V] (row-major) for each position of `tokens`: position t's row scores the token
    /// that follows `tokens[0...t]`.
    public func logits(tokens: [Int]) throws -> [Float] {
        try run([(tokens, makeCache(capacity: tokens.count))], allPositions: true)
    }

    /// Logits for several sequences in one pass: their rows are stacked for every matrix product
    /// (each weight read once per layer for all of them); attention stays within each sequence.
    public func logits(batch: [[Int]]) throws -> [[Float]] {
        if batch.count == 1 { return [try logits(tokens: batch[0])] }
        let caches = batch.map { makeCache(capacity: $0.count) }
        let flat = try run(Array(zip(batch, caches)), allPositions: true)
        var out: [[Float]] = []
        var offset = 0
        let V = config.vocabSize
        for tokens in batch {
            out.append(Array(flat[(offset * V)..<((offset + tokens.count) * V)]))
            offset += tokens.count
        }
        return out
    }

    /// log-softmax of `logits(tokens:)`, [T, V]: row t holds log p(next token | tokens[0...t]).
    public func logProbabilities(tokens: [Int]) throws -> [Float] {
        var l = try logits(tokens: tokens)
        Self.logSoftmax(&l, vocab: config.vocabSize)
        return l
    }

    /// log-softmax of each row of `logits` ([rows, vocab]) in place, in float32 with the row maximum
    /// subtracted first and the sum of exponentials taken in Double.
    /// Rows are shared between the cores when there are many.
    public static func logSoftmax(_ logits: inout [Float], vocab: Int) {
        precondition(vocab > 0 && logits.count % vocab == 0)
        let rows = logits.count / vocab
        let workers = logits.count >= 1 << 20 ? min(rows, ProcessInfo.processInfo.activeProcessorCount) : 1
        logits.withUnsafeMutableBufferPointer { b in
            let base = Shared(b.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                for r in share(rows, w, workers) { Kernels.logSoftmax(base.pointer + r * vocab, vocab) }
            }
        }
    }

    /// An empty cache for this model, with room for `capacity` positions before it grows.
    public func makeCache(capacity: Int = 256) -> KVCache {
        KVCache(
            layers: config.layers, width: config.kvHeads * config.headDim, capacity: capacity, limit: config.maxPositions,
            owner: ObjectIdentifier(self))
    }

    /// Runs `tokens` after the positions `cache` holds, adds them to it, and returns the logits of
    /// the last token ([V]) or, with `allPositions`, of every token ([T, V]).
    public func prefill(_ tokens: [Int], cache: KVCache, allPositions: Bool = false) throws -> [Float] {
        try run([(tokens, cache)], allPositions: allPositions)
    }

    /// One decoding step: `token` after the positions `cache` holds; returns its logits [V]. Every
    /// product is a matrix–vector one (`sgemv`).
    public func step(_ token: Int, cache: KVCache) throws -> [Float] {
        try run([([token], cache)], allPositions: false)
    }

    // MARK: The pass

    /// Checks every sequence, then runs them together under `BLAS.lane`. Returns the logits of
    /// every position (stacked in order) or of each sequence's last position.
    func run(_ sequences: [(tokens: [Int], cache: KVCache)], allPositions: Bool) throws -> [Float] {
        let V = config.vocabSize
        var seen = Set<ObjectIdentifier>()
        for (s, (tokens, cache)) in sequences.enumerated() {
            precondition(cache.owner == ObjectIdentifier(self), "a KVCache used with a model other than the one that made it")
            precondition(seen.insert(ObjectIdentifier(cache)).inserted, "one KVCache passed for two sequences")
            let field = sequences.count > 1 ? "tokens[\(s)]" : "tokens"
            let total = cache.count + tokens.count
            if total > config.maxPositions {
                let held = cache.count > 0 ? " (\(cache.count) already in the cache and \(tokens.count) new)" : ""
                throw ModelError(
                    .contextTooLong,
                    "\(field): the context is \(total) tokens long\(held) but the model's maximum is \(config.maxPositions)",
                    field: field, numbers: ["length": total, "maximum": config.maxPositions])
            }
            if let bad = tokens.firstIndex(where: { $0 < 0 || $0 >= V }) {
                throw ModelError(
                    .tokenOutOfRange,
                    "\(field)[\(bad)]: token id \(tokens[bad]) is outside the vocabulary (0..<\(V))", field: "\(field)[\(bad)]",
                    numbers: ["position": bad, "token": tokens[bad], "vocab": V])
            }
            if !allPositions && tokens.isEmpty {
                throw ModelError(.tokenOutOfRange, "\(field): no token to run", field: field)
            }
        }
        return BLAS.exclusive { forward(sequences, allPositions: allPositions) }
    }

    /// Where each sequence sits in a pass: its rows in the stacked matrices and its positions.
    struct Placement {
        let row: Int
        let count: Int
        let start: Int
        let cache: KVCache
    }

    func forward(_ sequences: [(tokens: [Int], cache: KVCache)], allPositions: Bool) -> [Float] {
        let c = config
        let H = c.hiddenSize
        let hd = c.headDim
        let D = c.heads * hd
        let KVD = c.kvHeads * hd
        let I = c.intermediateSize
        let V = c.vocabSize
        var placements: [Placement] = []
        var positions: [Int] = []
        var N = 0
        for (tokens, cache) in sequences {
            placements.append(Placement(row: N, count: tokens.count, start: cache.count, cache: cache))
            positions += (0..<tokens.count).map { cache.count + $0 }
            N += tokens.count
            cache.reserve(cache.count + tokens.count)
        }
        let outputRows = allPositions ? N : sequences.count
        guard N > 0 else { return [] }
        let rowCount = N

        let scratch = Scratch()
        let x = scratch.floats(N * H)
        let h = scratch.floats(N * H)
        // Embeddings (and GPT-2's learned positions).
        var r = 0
        for (tokens, _) in sequences {
            for t in tokens {
                (x + r * H).update(from: embedding.pointer.baseAddress! + t * H, count: H)
                if let pe = positionEmbedding {
                    let pr = pe.pointer.baseAddress! + positions[r] * H
                    for i in 0..<H { x[r * H + i] += pr[i] }
                }
                r += 1
            }
        }
        var cosTable: [Float] = []
        var sinTable: [Float] = []
        if let rope { (cosTable, sinTable) = rope.tables(positions: positions) }

        let fused = layers.first?.qkv != nil
        let ldq = fused ? D + 2 * KVD : D
        let q = scratch.floats(N * ldq)
        let k = fused ? q + D : scratch.floats(N * KVD)
        let v = fused ? q + D + KVD : scratch.floats(N * KVD)
        let ldkv = fused ? ldq : KVD
        let attention = scratch.floats(N * D)
        let a = scratch.floats(N * I)
        let b = layers.first?.gate != nil ? scratch.floats(N * I) : a
        let maxKeys = placements.map { $0.start + $0.count }.max() ?? 1
        let group = c.heads / c.kvHeads
        // Attention and the activations run on `workers` threads of their own (see `parallel`),
        // each with its own scores and activation scratch.
        let workers = N > sequences.count ? max(1, min(BLAS.threads, c.heads)) : 1
        let scoresPerWorker = max(Self.attentionBlock, group) * maxKeys
        let scores = Shared(scratch.floats(workers * scoresPerWorker))
        let activationScratch = Shared(scratch.floats(workers * Kernels.chunk))
        let (qs, outs) = (Shared(q), Shared(attention))

        for (l, layer) in layers.enumerated() {
            normalize(layer.attentionNorm, x, h, rows: N)
            if let qkv = layer.qkv {
                qkv.apply(h, rows: N, into: q)
            } else {
                layer.q!.apply(h, rows: N, into: q)
                layer.k!.apply(h, rows: N, into: k)
                layer.v!.apply(h, rows: N, into: v)
                cosTable.withUnsafeBufferPointer { cb in
                    sinTable.withUnsafeBufferPointer { sb in
                        Kernels.rope(q, rows: N, ld: D, heads: c.heads, headDim: hd, cos: cb.baseAddress!, sin: sb.baseAddress!)
                        Kernels.rope(k, rows: N, ld: KVD, heads: c.kvHeads, headDim: hd, cos: cb.baseAddress!, sin: sb.baseAddress!)
                    }
                }
            }
            for p in placements {
                for i in 0..<p.count {
                    (p.cache.keys[l] + (p.start + i) * KVD).update(from: k + (p.row + i) * ldkv, count: KVD)
                    (p.cache.values[l] + (p.start + i) * KVD).update(from: v + (p.row + i) * ldkv, count: KVD)
                }
            }
            let jobs = placements.map {
                AttentionJob(
                    row: $0.row, count: $0.count, start: $0.start, keys: Shared($0.cache.keys[l]), values: Shared($0.cache.values[l]))
            }
            parallel(workers) { w in
                for j in jobs {
                    self.attend(
                        q: qs.pointer + j.row * ldq, ldq: ldq, count: j.count, start: j.start, keys: j.keys.pointer,
                        values: j.values.pointer, out: outs.pointer + j.row * D, scores: scores.pointer + w * scoresPerWorker,
                        worker: w, workers: workers)
                }
            }
            layer.o.apply(attention, rows: N, into: x, accumulate: true)
            normalize(layer.mlpNorm, x, h, rows: N)
            if let gate = layer.gate {
                gate.apply(h, rows: N, into: a)
                layer.up.apply(h, rows: N, into: b)
                let (gates, ups) = (Shared(a), Shared(b))
                parallel(workers) { w in
                    let range = Self.share(rowCount * I, w, workers)
                    Kernels.swiGLU(
                        gates.pointer + range.lowerBound, ups.pointer + range.lowerBound, count: range.count,
                        scratch: activationScratch.pointer + w * Kernels.chunk)
                }
            } else {
                layer.up.apply(h, rows: N, into: a)
                let hidden = Shared(a)
                parallel(workers) { w in
                    let range = Self.share(rowCount * I, w, workers)
                    Kernels.geluNew(
                        hidden.pointer + range.lowerBound, count: range.count, scratch: activationScratch.pointer + w * Kernels.chunk)
                }
            }
            layer.down.apply(a, rows: N, into: x, accumulate: true)
        }
        for p in placements { p.cache.advance(by: p.count) }

        // The final norm and the head, on the rows whose logits are wanted.
        if !allPositions {
            for (i, p) in placements.enumerated() where i != p.row + p.count - 1 {
                (x + i * H).update(from: x + (p.row + p.count - 1) * H, count: H)
            }
        }
        normalize(finalNorm, x, h, rows: outputRows)
        // The head writes every element (beta = 0): no zero fill first.
        return [Float](unsafeUninitializedCapacity: outputRows * V) { out, initialized in
            head.apply(h, rows: outputRows, into: out.baseAddress!)
            initialized = outputRows * V
        }
    }

    func normalize(_ norm: Norm, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int) {
        let n = config.hiddenSize
        if let bias = norm.bias {
            Kernels.layerNorm(
                x, y, rows: rows, n: n, weight: norm.weight.pointer.baseAddress!, bias: bias.pointer.baseAddress!,
                epsilon: config.normEpsilon)
        } else {
            Kernels.rmsNorm(x, y, rows: rows, n: n, weight: norm.weight.pointer.baseAddress!, epsilon: config.normEpsilon)
        }
    }

    /// Worker `w`'s share of `0..<count`: contiguous, sizes differing by at most one.
    static func share(_ count: Int, _ w: Int, _ workers: Int) -> Range<Int> {
        (count * w / workers)..<(count * (w + 1) / workers)
    }

    /// Runs `body(w)` for w in 0..<workers, on `workers` threads when there is more than one,
    /// with OpenBLAS single-threaded meanwhile: attention's products are small (a block of 64
    /// query rows against at most the sequence's keys, per head), and OpenBLAS splitting each of
    /// them over its threads measured slower on two cores than one thread; heads, split between
    /// workers, parallelise with no synchronisation but the end of the section.
    func parallel(_ workers: Int, _ body: @Sendable (Int) -> Void) {
        if workers == 1 {
            body(0)
            return
        }
        BLAS.singleThreaded { DispatchQueue.concurrentPerform(iterations: workers, execute: body) }
    }

    /// Causal attention of `count` query rows at positions start..<start+count over the cached
    /// keys and values 0..<start+count (already holding these rows), into `out` [count, heads × d];
    /// worker `worker` of `workers` takes the heads (or, for one token, the key/value groups)
    /// h with h % workers == worker.
    ///
    /// One token: per key/value head, its group of query heads (adjacent in the row, so a
    /// [group, d] matrix) against the keys with `sgemv` (one head) or `sgemm` (a group).
    /// Several tokens: per head, blocks of `attentionBlock` query rows, each against the keys up to
    /// its last row only; the entries past a row's own position (and before its sliding window)
    /// are set to zero after the softmax over the allowed span.
    func attend(
        q: UnsafePointer<Float>, ldq: Int, count T: Int, start P: Int, keys: UnsafePointer<Float>,
        values: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>,
        worker: Int = 0, workers: Int = 1
    ) {
        let c = config
        let hd = c.headDim
        let D = c.heads * hd
        let KVD = c.kvHeads * hd
        let group = c.heads / c.kvHeads
        let scale = 1 / Float(hd).squareRoot()
        let window = c.slidingWindow
        func firstKey(_ position: Int) -> Int { window.map { max(0, position - $0 + 1) } ?? 0 }
        if T == 1 {
            let lo = firstKey(P)
            let n = P + 1 - lo
            for g in stride(from: worker, to: c.kvHeads, by: workers) {
                let kg = keys + lo * KVD + g * hd
                let vg = values + lo * KVD + g * hd
                let qg = q + g * group * hd
                let og = out + g * group * hd
                if group == 1 {
                    sgemv(m: n, n: hd, alpha: scale, a: kg, lda: KVD, x: qg, y: scores)
                    Kernels.softmax(scores, n)
                    sgemv(trans: true, m: n, n: hd, a: vg, lda: KVD, x: scores, y: og)
                } else {
                    sgemm(transB: true, m: group, n: n, k: hd, alpha: scale, a: qg, lda: hd, b: kg, ldb: KVD, c: scores, ldc: n)
                    for i in 0..<group { Kernels.softmax(scores + i * n, n) }
                    sgemm(m: group, n: hd, k: n, a: scores, lda: n, b: vg, ldb: KVD, c: og, ldc: hd)
                }
            }
            return
        }
        let B = Self.attentionBlock
        for head in stride(from: worker, to: c.heads, by: workers) {
            let g = head / group
            var b0 = 0
            while b0 < T {
                let rows = min(B, T - b0)
                let lo = firstKey(P + b0)
                let hi = P + b0 + rows
                let nk = hi - lo
                sgemm(
                    transB: true, m: rows, n: nk, k: hd, alpha: scale, a: q + b0 * ldq + head * hd, lda: ldq,
                    b: keys + lo * KVD + g * hd, ldb: KVD, c: scores, ldc: nk)
                for i in 0..<rows {
                    let position = P + b0 + i
                    let row = scores + i * nk
                    let from = firstKey(position) - lo
                    let to = position + 1 - lo
                    if from > 0 { row.update(repeating: 0, count: from) }
                    Kernels.softmax(row + from, to - from)
                    if to < nk { (row + to).update(repeating: 0, count: nk - to) }
                }
                sgemm(
                    m: rows, n: hd, k: nk, a: scores, lda: nk, b: values + lo * KVD + g * hd, ldb: KVD,
                    c: out + b0 * D + head * hd, ldc: D)
                b0 += rows
            }
        }
    }
}

extension Linear {
    /// y[rows, outputs] = x[rows, inputs] · Wᵀ (+ b), or, `accumulate`, y += that (the residual
    /// add folded into the product with beta = 1). One row is a matrix–vector product.
    func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        let w = weight.pointer.baseAddress!
        var beta: Float = accumulate ? 1 : 0
        if let bias, !accumulate {
            for r in 0..<rows { (y + r * outputs).update(from: bias.pointer.baseAddress!, count: outputs) }
            beta = 1
        }
        if rows == 1 {
            if weight.transposed {
                sgemv(trans: true, m: inputs, n: outputs, a: w, lda: outputs, x: x, beta: beta, y: y)
            } else {
                sgemv(m: outputs, n: inputs, a: w, lda: inputs, x: x, beta: beta, y: y)
            }
        } else {
            sgemm(
                transB: !weight.transposed, m: rows, n: outputs, k: inputs, a: x, lda: inputs, b: w,
                ldb: weight.transposed ? outputs : inputs, beta: beta, c: y, ldc: outputs)
        }
        if let bias, accumulate {
            let bp = bias.pointer.baseAddress!
            for r in 0..<rows {
                let yr = y + r * outputs
                for i in 0..<outputs { yr[i] += bp[i] }
            }
        }
    }
}

/// One sequence's part of an attention section, for the workers.
struct AttentionJob: Sendable {
    let row: Int
    let count: Int
    let start: Int
    let keys: Shared
    let values: Shared
}

/// A pointer handed to the workers of `TransformerModel.parallel`.
///
/// `@unchecked Sendable` without a lock: each worker writes a disjoint part of the memory (its own
/// heads' columns, its own range of activations, its own scratch) and reads only what no worker
/// writes during the section; `concurrentPerform` returning is the synchronisation.
struct Shared: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    init(_ pointer: UnsafeMutablePointer<Float>) { self.pointer = pointer }
}

/// Float buffers for one pass, 64-byte aligned, freed together when the pass ends.
final class Scratch {
    private var blocks: [UnsafeMutableRawPointer] = []

    func floats(_ count: Int) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * MemoryLayout<Float>.stride, alignment: 64)
        blocks.append(p)
        return p.bindMemory(to: Float.self, capacity: max(1, count))
    }

    deinit {
        for p in blocks { p.deallocate() }
    }
}
