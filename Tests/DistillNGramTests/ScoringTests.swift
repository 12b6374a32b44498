import Foundation
import Testing

@testable import DistillNGram

/// Scores of `smallARPA` worked out by hand from its listed numbers with the back-off
/// rule: the longest listed n-gram's probability, plus the back-off weights of the
/// longer contexts the model lists.
@Suite("Back-off scoring")
struct ScoringTests {
    let m: NGramModel

    init() throws { m = try NGramModel(arpa: smallARPA) }

    func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) < 1e-12 }

    @Test func listedNGramsAreUsedWhenTheContextReachesThem() {
        // a | <s>: "<s> a" -0.4; b | <s> a: "<s> a b" -0.2; c | a b: "a b c" -0.1; </s> | c: "c </s>" -0.45.
        let s = m.fullScores(sentence: "a b c")
        #expect(s.map(\.ngramLength) == [2, 3, 3, 2])
        #expect(zip(s.map(\.log10Probability), [-0.4, -0.2, -0.1, -0.45]).allSatisfy(close))
        #expect(close(m.score(sentence: "a b c"), -1.15))
        #expect(close(m.perplexity(sentence: "a b c"), pow(10, 1.15 / 4)))
    }

    @Test func unlistedNGramsBackOffThroughTheContextWeights() {
        // c | <s>: -0.8 + b(<s>) -0.5; a | c: -0.6 + b(c) -0.1; </s> | a: -0.9 + b(a) -0.3.
        let s = m.fullScores(sentence: "c a")
        #expect(zip(s.map(\.log10Probability), [-1.3, -0.7, -1.2]).allSatisfy(close))
        #expect(s.map(\.ngramLength) == [1, 1, 1])
    }

    @Test func contextsThatAreNoContextDropOutOfTheState() {
        // "b 1999" and "1999" have no back-off weight and start no longer n-gram: after
        // them the state is empty, and a | (nothing) is the bare unigram -0.6.
        let s = m.fullScores(sentence: "b 1999 a")
        #expect(zip(s.map(\.log10Probability), [-1.2, -0.5, -0.6, -1.2]).allSatisfy(close))
        let after = m.state(after: ["b", "1999"].map { m.vocabulary.id($0) }, from: m.beginSentenceState)
        #expect(after.words.isEmpty)
        // Equal states for histories that the model cannot tell apart.
        let viaABC = m.state(after: ["a", "b", "c"].map { m.vocabulary.id($0) }, from: m.beginSentenceState)
        let viaC = m.state(after: [m.vocabulary.id("c")], from: m.beginSentenceState)
        #expect(viaABC == viaC)
    }

    @Test func withoutSentenceMarkersScoringStartsFromNothing() {
        // a: -0.6; b | a: "a b" -0.3; </s> | a b: -0.9 + b(b) -0.2 + b(a b) -0.25.
        #expect(close(m.score(["a", "b"], bos: false), -0.6 - 0.3 - 1.35))
        #expect(close(m.score(["a", "b"], bos: false, eos: false), -0.9))
        #expect(m.fullScores(["zebra", "<unk>"], bos: false, eos: false).map(\.isUnknown) == [true, true])
    }

    @Test func theNextWordDistributionIsEachWordsScore() {
        let state = m.beginSentenceState
        let d = m.nextWordLog10Probabilities(after: state)
        #expect(d.count == m.vocabulary.count)
        #expect(d[Int(m.vocabulary.beginSentence)] == -.infinity)
        for w in 0..<m.vocabulary.count where WordID(w) != m.vocabulary.beginSentence {
            #expect(d[w] == m.score(WordID(w), after: state).score.log10Probability)
        }
        #expect(close(d[Int(m.vocabulary.id("a"))], -0.4))
        #expect(close(d[Int(m.vocabulary.id("b"))], -1.2))
        let ln = m.nextWordLogProbabilities(after: state)
        #expect(abs(ln[Int(m.vocabulary.id("a"))] - -0.4 * log(10)) < 1e-12)
    }

    @Test func sentencesSplitAtWhiteSpaceAsPythonDoes() {
        // Python: "  a\tb\xa0c\u2003d\u200be\x1cf  ".split() == ['a', 'b', 'c', 'd\u200be', 'f']
        #expect(whitespaceTokens("  a\tb\u{A0}c\u{2003}d\u{200B}e\u{1C}f  ") == ["a", "b", "c", "d\u{200B}e", "f"])
        // A combining accent after a space stays with the next word (Python: ['x', '\u0301y']).
        #expect(whitespaceTokens("x \u{301}y") == ["x", "\u{301}y"])
        #expect(whitespaceTokens(" \n ").isEmpty)
    }
}
