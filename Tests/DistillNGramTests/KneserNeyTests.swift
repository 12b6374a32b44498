import DistillTestSupport
import Foundation
import Testing

@testable import DistillNGram

/// Sentences of Zipf-distributed words w0…w(vocabulary − 1).
func zipfCorpus(seed: UInt64, sentences: Int, vocabulary: Int) -> [[String]] {
    var rng = Rng(seed)
    let weights = (0..<vocabulary).map { 1 / Double($0 + 1) }
    let total = weights.reduce(0, +)
    func word() -> String {
        var u = rng.uniform() * total
        for (i, w) in weights.enumerated() {
            u -= w
            if u <= 0 { return "w\(i)" }
        }
        return "w\(vocabulary - 1)"
    }
    return (0..<sentences).map { _ in (0..<rng.int(11)).map { _ in word() } }
}

@Suite("Kneser–Ney estimation")
struct KneserNeyTests {
    static let fallback = [0.5, 1, 1.5]

    /// "a b" and "a c" with D = 0.5, 1, 1.5, worked by hand:
    /// unigram adjusted counts a 1, b 1, c 1, </s> 2 (its two predecessors), <unk> 0;
    /// S = 5, γ = (0.5·3 + 1·1) / 5 = 0.5, |V| = 5 (a b c </s> <unk>):
    /// p(a) = p(b) = p(c) = 0.5/5 + 0.5/5 = 0.2, p(</s>) = 1/5 + 0.1 = 0.3, p(<unk>) = 0.1.
    /// Bigrams: after <s>, a(<s> a) = 2: p(a | <s>) = 1/2 + 0.5·0.2 = 0.6, γ(<s>) = 1/2;
    /// after a: p(b | a) = 0.5/2 + 0.5·0.2 = 0.35, γ(a) = 0.5; after b: p(</s> | b) = 0.5 + 0.5·0.3 = 0.65.
    @Test func aBigramModelWorkedByHand() throws {
        let built = try KneserNeyBuilder.estimate(
            [["a", "b"], ["a", "c"]], options: KneserNeyOptions(order: 2, discountFallback: Self.fallback))
        let m = built.model
        #expect(m.vocabulary.words == ["<unk>", "<s>", "</s>", "a", "b", "c"])
        #expect(m.counts == [6, 5])
        #expect(built.discounts.map(\.countsOfCounts) == [[3, 1, 0, 0], [4, 1, 0, 0]])
        #expect(built.discounts.allSatisfy { $0.fallback })
        func p(_ w: String, _ context: [String]) -> Double {
            let state = m.state(after: context.map { m.vocabulary.id($0) }, from: m.nullContextState)
            return pow(10, m.log10Probability(of: m.vocabulary.id(w), after: state))
        }
        let expected: [(String, [String], Double)] = [
            ("a", [], 0.2), ("</s>", [], 0.3), ("<unk>", [], 0.1), ("zebra", [], 0.1),
            ("a", ["<s>"], 0.6), ("b", ["<s>"], 0.5 * 0.2), ("b", ["a"], 0.35), ("c", ["a"], 0.35),
            ("</s>", ["a"], 0.5 * 0.3), ("</s>", ["b"], 0.65), ("<unk>", ["c"], 0.5 * 0.1),
        ]
        for (w, context, value) in expected {
            #expect(abs(p(w, context) - value) < 1e-12, "p(\(w) | \(context))")
        }
        #expect(abs(m.score(["a", "b"]) - (log10(0.6) + log10(0.35) + log10(0.65))) < 1e-12)
        // <s> is written with probability 1; </s> and <unk> are no context and carry no back-off.
        let lines = m.arpaText().split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
        func entry(_ words: String) -> [String] { lines.first { $0.count > 1 && $0[1] == words } ?? [] }
        #expect(entry("<s>").count == 3 && entry("<s>")[0] == "0.0" && abs(Double(entry("<s>")[2])! - log10(0.5)) < 1e-12)
        #expect(entry("<unk>").count == 2 && abs(Double(entry("<unk>")[0])! - log10(0.1)) < 1e-12)
        #expect(entry("</s>").count == 2 && abs(Double(entry("</s>")[0])! - log10(0.3)) < 1e-12)
        #expect(entry("a b").count == 2)
    }

    @Test(arguments: 1...5)
    func everyContextsNextWordDistributionSumsToOne(order: Int) throws {
        let corpus = zipfCorpus(seed: UInt64(order), sentences: 250, vocabulary: 30)
        let m = try KneserNeyBuilder.estimate(corpus, options: KneserNeyOptions(order: order, discountFallback: Self.fallback)).model
        // Contexts: every n-gram the model lists below the highest order, and random word
        // sequences (some with unknown words) after <s> or after nothing.
        var contexts: [(NGramState, [WordID])] = [(m.beginSentenceState, []), (m.nullContextState, [])]
        for k in 1..<order {
            let keys: [[WordID]] =
                k == 1
                ? (0..<m.vocabulary.count).map { [WordID($0)] } : (0..<m.tables[k - 2].listed).map { Array(m.tables[k - 2].index.key($0)) }
            for key in keys {
                if key.first == m.vocabulary.beginSentence {
                    contexts.append((m.beginSentenceState, Array(key.dropFirst())))
                } else {
                    contexts.append((m.nullContextState, key))
                }
            }
        }
        var rng = Rng(99)
        for _ in 0..<200 {
            let words = (0..<rng.int(order + 2)).map { _ in WordID(rng.int(m.vocabulary.count)) }
            contexts.append(
                (rng.int(2) == 0 ? m.beginSentenceState : m.nullContextState, words.filter { $0 != m.vocabulary.beginSentence }))
        }
        var worst = 0.0
        for (start, words) in contexts {
            let state = m.state(after: words, from: start)
            let d = m.nextWordLog10Probabilities(after: state)
            let sum = d.reduce(0) { $0 + pow(10, $1) }
            worst = max(worst, abs(sum - 1))
        }
        #expect(contexts.count > 200)
        #expect(worst < 1e-9, "worst |Σp − 1| = \(worst)")
    }

    @Test func theSameTextGivesTheSameFileAndTheFileReadsBackExactly() throws {
        let corpus = zipfCorpus(seed: 7, sentences: 200, vocabulary: 25)
        let options = KneserNeyOptions(order: 4, discountFallback: Self.fallback)
        let a = try KneserNeyBuilder.estimate(corpus, options: options).model
        let b = try KneserNeyBuilder.estimate(corpus, options: options).model
        let text = a.arpaText()
        #expect(text == b.arpaText())
        let reread = try NGramModel(arpa: text)
        #expect(reread.arpaText() == text)
        for sentence in corpus.prefix(30) + [["w1", "unseen", "w2"]] {
            #expect(reread.fullScores(sentence) == a.fullScores(sentence))
        }
    }

    @Test func textThatCannotGiveDiscountsIsRefusedUnlessAFallbackIsSet() throws {
        let error = #expect(throws: NGramError.self) {
            try KneserNeyBuilder.estimate([["a", "b", "c"]], options: KneserNeyOptions(order: 3))
        }
        #expect(error?.kind == .build)
        #expect(error?.message.contains("1-grams' counts of counts t1…t4 = ") == true)
        #expect(error?.message.contains("discountFallback") == true)
        let built = try KneserNeyBuilder.estimate([["a", "b", "c"]], options: KneserNeyOptions(order: 3, discountFallback: Self.fallback))
        #expect(built.discounts.map(\.d) == [Self.fallback, Self.fallback, Self.fallback])
    }

    @Test func discountsFollowChenAndGoodman() throws {
        // t = 10, 4, 2, 1: Y = 10/18, D1 = 1 − 2Y·4/10, D2 = 2 − 3Y·2/4, D3 = 3 − 4Y·1/2.
        let y = 10.0 / 18
        let d = try #require(KneserNeyBuilder.discounts([10, 4, 2, 1]))
        #expect(zip(d, [1 - 2 * y * 0.4, 2 - 3 * y * 0.5, 3 - 4 * y * 0.5]).allSatisfy { abs($0 - $1) < 1e-15 })
        #expect(KneserNeyBuilder.discounts([10, 0, 2, 1]) == nil)
        #expect(KneserNeyBuilder.discounts([1, 5, 1, 9]) == nil)  // D3 would be negative
    }

    @Test func badOptionsAndSpecialTokensAreRefused() throws {
        #expect(throws: NGramError.self) { try KneserNeyBuilder(options: KneserNeyOptions(order: 0)) }
        #expect(throws: NGramError.self) { try KneserNeyBuilder(options: KneserNeyOptions(order: 2, discountFallback: [0.5, 1])) }
        #expect(throws: NGramError.self) { try KneserNeyBuilder(options: KneserNeyOptions(order: 2, discountFallback: [0.5, 3, 1])) }
        let empty = try KneserNeyBuilder(options: KneserNeyOptions(order: 2))
        #expect(throws: NGramError.self) { try empty.build() }

        var builder = try KneserNeyBuilder(options: KneserNeyOptions(order: 2, discountFallback: Self.fallback))
        try builder.add(sentence: "a b")
        let error = #expect(throws: NGramError.self) { try builder.add(sentence: "a </s> b") }
        #expect(error?.message.contains("sentence 2 contains </s>") == true)
        #expect(builder.sentences == 1 && builder.tokens == 2)  // the refused sentence added nothing

        var skipping = try KneserNeyBuilder(options: KneserNeyOptions(order: 2, discountFallback: Self.fallback, specialTokens: .skip))
        try skipping.add(sentence: "a <unk> b")
        try skipping.add(sentence: "<s>")
        let m = try skipping.build().model
        #expect(m.counts == [5, 4])  // <unk> <s> </s> a b; <s> a, a b, b </s>, <s> </s>
    }
}
