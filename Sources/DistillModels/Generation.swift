import DistillMath
import DistillNGram
import Foundation

/// How tokens are chosen, and when a completion ends.
public struct SamplingOptions: Sendable, Equatable {
    public var maxTokens: Int
    /// 0: greedy (the most probable token, the lowest id on ties).
    public var temperature: Double
    /// Keep only the k most probable tokens; 0: all.
    public var topK: Int
    /// Keep the fewest most probable tokens whose probability reaches p; 1: all.
    public var topP: Double
    public var seed: UInt64
    /// Strings that end a completion; the text is cut before the first one.
    public var stop: [String]

    public init(maxTokens: Int, temperature: Double = 1, topK: Int = 0, topP: Double = 1, seed: UInt64 = 0, stop: [String] = []) {
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
        self.stop = stop
    }
}

public struct Completion: Sendable, Equatable {
    public enum FinishReason: String, Sendable {
        case length, eos, stop
    }

    /// The new tokens (an end token included).
    public var tokens: [Int]
    /// The new tokens as text, cut before a stop string.
    public var text: String
    /// Σ log p(token) under the model's own distribution (temperature 1, no truncation).
    public var logprob: Double
    public var finishReason: FinishReason
}

extension LanguageModel {
    /// `count` completions of `prompt`; completion i draws from a generator seeded with
    /// `options.seed + i`, so a seed gives the same completions on every run and machine.
    /// `isCancelled` is asked before every token.
    public func generate(
        prompt: [Int], count: Int, options: SamplingOptions, field: String = "tokens", isCancelled: (() -> Bool)? = nil
    ) throws -> [Completion] {
        try checkTokens(prompt, field: field)
        var out: [Completion] = []
        for i in 0..<count {
            var rng = SplitMix64(seed: options.seed &+ UInt64(i))
            out.append(try complete(prompt, options: options, rng: &rng, isCancelled: isCancelled))
        }
        return out
    }

    private func complete(
        _ prompt: [Int], options: SamplingOptions, rng: inout SplitMix64, isCancelled: (() -> Bool)?
    ) throws -> Completion {
        var next: (Int) throws -> [Float]
        var logits: [Float]
        var room = Int.max
        switch body {
        case .transformer(let t):
            let cache = t.makeCache(capacity: prompt.count + options.maxTokens)
            logits = try t.prefill(prompt, cache: cache)
            next = { try t.step($0, cache: cache) }
            room = (contextLength ?? Int.max) - prompt.count
        case .ngram(let m):
            var state = ngramStates(m, prompt).last ?? m.nullContextState
            logits = m.nextWordLogProbabilities(after: state).map { Float($0) }
            next = { token in
                state = m.score(WordID(token), after: state).next
                return m.nextWordLogProbabilities(after: state).map { Float($0) }
            }
        }
        var tokens: [Int] = []
        var logprob = 0.0
        var reason = Completion.FinishReason.length
        var text = ""
        while tokens.count < min(options.maxTokens, room) {
            if isCancelled?() == true { throw CancellationError() }
            let logp = Explain.logSoftmax(logits)
            let token = Self.choose(logp, options: options, rng: &rng)
            tokens.append(token)
            logprob += logp[token]
            if endTokens.contains(token) {
                reason = .eos
                break
            }
            if !options.stop.isEmpty {
                text = (try? decode(tokens, skipSpecial: true)) ?? ""
                if let cut = options.stop.compactMap({ text.range(of: $0)?.lowerBound }).min() {
                    text = String(text[..<cut])
                    reason = .stop
                    return Completion(tokens: tokens, text: text, logprob: logprob, finishReason: reason)
                }
            }
            if tokens.count < min(options.maxTokens, room) { logits = try next(token) }
        }
        text = tokenizer == nil && kind == .transformer ? "" : try decode(tokens, skipSpecial: true)
        return Completion(tokens: tokens, text: text, logprob: logprob, finishReason: reason)
    }

    /// The next token: argmax at temperature 0, else a draw from the tempered, truncated distribution.
    static func choose(_ logp: [Double], options: SamplingOptions, rng: inout SplitMix64) -> Int {
        if options.temperature == 0 || options.topK == 1 {
            var best = 0
            for i in 1..<logp.count where logp[i] > logp[best] { best = i }
            return best
        }
        // Candidates by descending probability (ties: lower id first), truncated by top-k then top-p.
        var order = logp.indices.filter { logp[$0] > -.infinity }
        order.sort { logp[$0] != logp[$1] ? logp[$0] > logp[$1] : $0 < $1 }
        if options.topK > 0 && order.count > options.topK { order.removeSubrange(options.topK...) }
        let scaled = order.map { logp[$0] / options.temperature }
        let top = scaled.first ?? 0
        var weights = scaled.map { exp($0 - top) }
        if options.topP < 1 {
            let total = weights.reduce(0, +)
            var cumulative = 0.0
            var keep = weights.count
            for (i, w) in weights.enumerated() {
                cumulative += w / total
                if cumulative >= options.topP {
                    keep = i + 1
                    break
                }
            }
            weights.removeSubrange(keep...)
        }
        let total = weights.reduce(0, +)
        var u = rng.nextUniform() * total
        for (i, w) in weights.enumerated() {
            u -= w
            if u < 0 { return order[i] }
        }
        return order[weights.count - 1]
    }
}

/// Steele, Lea and Flood's SplitMix64: small, fast, and the same sequence everywhere for a seed.
struct SplitMix64 {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) from the top 53 bits.
    mutating func nextUniform() -> Double { Double(next() >> 11) * 0x1p-53 }
}
