import Foundation
import Testing

@testable import DistillModels

/// Causal attention on hand-sized examples against the same attention computed in Double, and
/// the passes built on it (KV-cache decoding, batches) against each other.
struct AttentionTests {
    struct Case: CustomStringConvertible, Sendable {
        let kvHeads: Int
        let window: Int?
        let start: Int
        let count: Int
        var description: String { "kv \(kvHeads) window \(window.map(String.init) ?? "none") start \(start) count \(count)" }
    }

    static let cases: [Case] = [
        Case(kvHeads: 4, window: nil, start: 0, count: 7),  // multi-head, a fresh sequence
        Case(kvHeads: 2, window: nil, start: 3, count: 70),  // grouped-query, two query blocks, after a cached prefix
        Case(kvHeads: 1, window: nil, start: 9, count: 1),  // one token, one key/value head for all four (sgemm path)
        Case(kvHeads: 4, window: nil, start: 5, count: 1),  // one token, multi-head (sgemv path)
        Case(kvHeads: 2, window: 3, start: 2, count: 9),  // sliding window
        Case(kvHeads: 2, window: 4, start: 11, count: 1),  // sliding window, one token
    ]

    @Test(arguments: cases)
    func attentionMatchesFloat64(c: Case) throws {
        let heads = 4
        let d = 8
        let config = llamaConfig(heads: heads, kvHeads: c.kvHeads, headDim: d, window: c.window)
        let model = try TransformerModel(source: MemorySource(config: config))
        let D = heads * d
        let KVD = c.kvHeads * d
        let L = c.start + c.count
        var rng = Rng(UInt64(L * 31 + c.kvHeads))
        let q = rng.floats(c.count * D, scale: 2)
        let keys = rng.floats(L * KVD, scale: 2)
        let values = rng.floats(L * KVD)
        var out = [Float](repeating: .nan, count: c.count * D)
        var scores = [Float](repeating: .nan, count: max(TransformerModel.attentionBlock, heads) * L)
        model.attend(q: q, ldq: D, count: c.count, start: c.start, keys: keys, values: values, out: &out, scores: &scores)

        var want = [Double](repeating: 0, count: c.count * D)
        let group = heads / c.kvHeads
        for i in 0..<c.count {
            let position = c.start + i
            let first = c.window.map { max(0, position - $0 + 1) } ?? 0
            for h in 0..<heads {
                let g = h / group
                var s = [Double]()
                for j in first...position {
                    var dot = 0.0
                    for e in 0..<d { dot += Double(q[i * D + h * d + e]) * Double(keys[j * KVD + g * d + e]) }
                    s.append(dot / Double(d).squareRoot())
                }
                let m = s.max()!
                let z = s.map { exp($0 - m) }.reduce(0, +)
                for (n, j) in (first...position).enumerated() {
                    let p = exp(s[n] - m) / z
                    for e in 0..<d { want[i * D + h * d + e] += p * Double(values[j * KVD + g * d + e]) }
                }
            }
        }
        let worst = maxAbsDiff(out, want)
        #expect(worst < 2e-6, "worst |Δ| \(worst)")
    }

    static let configs: [ModelConfig] = [
        gpt2Config(), llamaConfig(kvHeads: 2), llamaConfig(kvHeads: 1, window: 5, tied: true),
        llamaConfig(architecture: .qwen2, bias: true),
    ]

    /// Decoding with the KV cache (one prefix pass, then one token at a time) gives the logits of
    /// the full teacher-forced pass.
    @Test(arguments: configs)
    func cachedDecodingEqualsTheFullPass(config: ModelConfig) throws {
        let model = try TransformerModel(source: MemorySource(config: config, seed: 7))
        var rng = Rng(2)
        let tokens = (0..<20).map { _ in Int(rng.next() % UInt64(config.vocabSize)) }
        let full = try model.logits(tokens: tokens)
        let V = config.vocabSize
        for split in [0, 1, 6] {
            let cache = model.makeCache(capacity: 2)
            var rows: [Float] = []
            if split > 0 { rows += try model.prefill(Array(tokens[..<split]), cache: cache, allPositions: true) }
            for t in tokens[split...] { rows += try model.step(t, cache: cache) }
            #expect(cache.count == tokens.count)
            let worst = maxAbsDiff(rows, full.map(Double.init))
            #expect(worst < 1e-4, "split \(split): worst |Δ logit| \(worst)")
        }
        // The last-position logits of a prefill are the last row of the full pass.
        let last = try model.prefill(tokens, cache: model.makeCache())
        #expect(maxAbsDiff(last, full[((tokens.count - 1) * V)...].map(Double.init)) < 1e-4)
    }

    /// Sequences of different lengths stacked in one pass give each its own logits.
    @Test(arguments: configs)
    func batchEqualsOneAtATime(config: ModelConfig) throws {
        let model = try TransformerModel(source: MemorySource(config: config, seed: 8))
        var rng = Rng(4)
        let batch = [1, 13, 4, 30].map { n in (0..<n).map { _ in Int(rng.next() % UInt64(config.vocabSize)) } }
        let together = try model.logits(batch: batch)
        for (tokens, logits) in zip(batch, together) {
            let alone = try model.logits(tokens: tokens)
            #expect(maxAbsDiff(logits, alone.map(Double.init)) < 1e-5)
        }
    }
}
