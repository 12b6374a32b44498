import Foundation

/// What a model remembers of the words before the next one: kenlm's `State`.
///
/// It holds at most `order - 1` words, most recent first, each with the back-off
/// weight of the context it ends. Like kenlm, it keeps only as many words as some
/// longer n-gram could still use (a context that extends to the right), which
/// changes no probability and makes equal states compare equal.
public struct NGramState: Sendable, Hashable {
    /// The remembered words, most recent first.
    public internal(set) var words: [WordID]
    /// `backoffs[i]`: the log10 back-off weight of the context `words[i]…words[0]`.
    var backoffs: [Double]

    init(words: [WordID], backoffs: [Double]) {
        self.words = words
        self.backoffs = backoffs
    }
}

/// One word's score: kenlm's `full_scores` triple.
public struct WordScore: Sendable, Equatable {
    /// log10 p(word | context), back-off weights included.
    public var log10Probability: Double
    /// The length of the longest n-gram found for the word (1 for a unigram).
    public var ngramLength: Int
    /// True when the word is not in the vocabulary (scored as `<unk>`).
    public var isUnknown: Bool
}

extension NGramModel {
    /// The state at the start of a sentence: `<s>` has been seen.
    public var beginSentenceState: NGramState {
        let bos = vocabulary.beginSentence
        return NGramState(words: [bos], backoffs: [unigramBackoff[Int(bos)]])
    }

    /// The state with no context at all (kenlm's `NullContextState`).
    public var nullContextState: NGramState { NGramState(words: [], backoffs: []) }

    /// Scores `word` after `state` and returns the score with the state after it.
    public func score(_ word: WordID, after state: NGramState) -> (score: WordScore, next: NGramState) {
        let (p, length, next) = lookup(word, after: state, buildNext: true)
        return (WordScore(log10Probability: p, ngramLength: length, isUnknown: word == vocabulary.unknown), next!)
    }

    /// log10 p(word | state), without building the next state.
    public func log10Probability(of word: WordID, after state: NGramState) -> Double {
        lookup(word, after: state, buildNext: false).log10
    }

    /// The state after reading `words` (ids) from `state`.
    public func state(after words: [WordID], from state: NGramState) -> NGramState {
        var s = state
        for w in words { s = score(w, after: s).next }
        return s
    }

    /// kenlm's `full_scores(sentence, bos, eos)` on words already split: one score per
    /// word and, with `eos`, one for `</s>`.
    public func fullScores(_ words: [String], bos: Bool = true, eos: Bool = true) -> [WordScore] {
        var state = bos ? beginSentenceState : nullContextState
        var scores: [WordScore] = []
        scores.reserveCapacity(words.count + 1)
        for w in words {
            let (s, next) = score(vocabulary.id(w), after: state)
            scores.append(s)
            state = next
        }
        if eos {
            var s = score(vocabulary.endSentence, after: state).score
            s.isUnknown = false
            scores.append(s)
        }
        return scores
    }

    /// kenlm's `full_scores` on a sentence split at white space.
    public func fullScores(sentence: String, bos: Bool = true, eos: Bool = true) -> [WordScore] {
        fullScores(whitespaceTokens(sentence), bos: bos, eos: eos)
    }

    /// kenlm's `score(sentence, bos, eos)`: the sentence's log10 probability.
    public func score(_ words: [String], bos: Bool = true, eos: Bool = true) -> Double {
        fullScores(words, bos: bos, eos: eos).reduce(0) { $0 + $1.log10Probability }
    }

    public func score(sentence: String, bos: Bool = true, eos: Bool = true) -> Double {
        score(whitespaceTokens(sentence), bos: bos, eos: eos)
    }

    /// kenlm's `perplexity(sentence)`: 10^(−log10 p / (words + 1)), the `+ 1` for `</s>`.
    public func perplexity(sentence: String) -> Double { perplexity(sentences: [sentence]) }

    /// The perplexity of several sentences together: 10^(−Σ log10 p / Σ (words + 1)).
    public func perplexity(sentences: [String]) -> Double {
        var total = 0.0
        var predicted = 0
        for s in sentences {
            let words = whitespaceTokens(s)
            total += score(words)
            predicted += words.count + 1
        }
        return pow(10, -total / Double(max(predicted, 1)))
    }

    /// log10 p(w | state) for every word w of the vocabulary, indexed by id: the
    /// model as a distribution over its vocabulary.
    ///
    /// `<s>` gets −∞: it only ever starts a sentence and is never predicted (its
    /// unigram entry is a convention: lmplz writes 0, SRILM −99). For a Kneser–Ney
    /// model built here the other entries sum to 1. Costs one hash probe per word
    /// and order.
    public func nextWordLog10Probabilities(after state: NGramState) -> [Double] {
        var out = [Double](repeating: 0, count: vocabulary.count)
        for w in 0..<vocabulary.count { out[w] = lookup(WordID(w), after: state, buildNext: false).log10 }
        out[Int(vocabulary.beginSentence)] = -.infinity
        return out
    }

    /// Natural-log probabilities over the vocabulary (log10 values × ln 10), for
    /// code that works in nats; `<s>` is −∞ as in `nextWordLog10Probabilities`.
    public func nextWordLogProbabilities(after state: NGramState) -> [Double] {
        let ln10 = M_LN10
        return nextWordLog10Probabilities(after: state).map { $0 * ln10 }
    }

    /// kenlm's search, in its order: the unigram, then longer n-grams ending in the
    /// word while the state's context reaches and the table has them; then the
    /// back-off weights of the state's contexts at least as long as the n-gram found.
    /// The next state keeps the word and as much context as still extends.
    private func lookup(_ word: WordID, after state: NGramState, buildNext: Bool)
        -> (log10: Double, length: Int, next: NGramState?)
    {
        let order = order
        var prob = unigramLog10[Int(word)]
        var length = 1
        let unigramBackoff = unigramBackoff[Int(word)]
        var nextLength = hasExtension(unigramBackoff) ? 1 : 0
        var backoffs: [Double] = []
        if buildNext { backoffs.append(unigramBackoff) }
        let reach = min(state.words.count, order - 1)
        if reach > 0 {
            withUnsafeTemporaryAllocation(of: WordID.self, capacity: order) { key in
                key[order - 1] = word
                for i in 1...reach { key[order - 1 - i] = state.words[i - 1] }
                for j in 1...reach {
                    let table = tables[j - 1]
                    guard let row = table.index.find(UnsafeBufferPointer(rebasing: key[(order - 1 - j)...])) else { break }
                    prob = table.log10Prob[row]
                    length = j + 1
                    if j + 1 < order {
                        let b = table.backoff[row]
                        if buildNext { backoffs.append(b) }
                        if hasExtension(b) { nextLength = j + 1 }
                    }
                }
            }
        }
        if length - 1 < state.backoffs.count {
            for i in (length - 1)..<state.backoffs.count { prob += state.backoffs[i] }
        }
        guard buildNext else { return (prob, length, nil) }
        let words = nextLength > 0 ? [word] + state.words.prefix(nextLength - 1) : []
        return (prob, length, NGramState(words: words, backoffs: Array(backoffs.prefix(nextLength))))
    }
}
