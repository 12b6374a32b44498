import Foundation

/// How a Kneser–Ney estimate is made.
public struct KneserNeyOptions: Sendable, Equatable {
    /// What to do with `<s>`, `</s>` or `<unk>` in the training text.
    public enum SpecialTokens: Sendable, Equatable {
        /// Refuse the sentence, naming it and the token (lmplz's default).
        case reject
        /// Drop them, as if they were white space (lmplz's `--skip_symbols`).
        case skip
    }

    /// The highest order, 1 or more.
    public var order: Int
    /// D1, D2 and D3+ for any order whose counts of counts cannot give discounts
    /// (tiny or artificial text). nil: such an order is an error, as in lmplz; lmplz's
    /// `--discount_fallback` suggests 0.5, 1 and 1.5.
    public var discountFallback: [Double]?
    public var specialTokens: SpecialTokens

    public init(order: Int, discountFallback: [Double]? = nil, specialTokens: SpecialTokens = .reject) {
        self.order = order
        self.discountFallback = discountFallback
        self.specialTokens = specialTokens
    }
}

/// The discounts of one order and the counts of counts they came from.
public struct KneserNeyDiscounts: Sendable, Equatable {
    /// D1, D2 and D3+: what is taken from an n-gram whose adjusted count is 1, 2, or 3 and more.
    public var d: [Double]
    /// t1…t4: how many n-grams of this order have adjusted count 1, 2, 3 and 4.
    public var countsOfCounts: [Int]
    /// True when `d` is the fallback, because t1…t4 could not give discounts.
    public var fallback: Bool
}

/// A Kneser–Ney estimate: the model and how it was made.
public struct KneserNeyModel: Sendable {
    public let model: NGramModel
    /// Per order, index 0 for unigrams.
    public let discounts: [KneserNeyDiscounts]
    public let sentences: Int
    public let tokens: Int
}

/// Interpolated modified Kneser–Ney (Chen & Goodman 1998), estimated as lmplz does.
///
/// Each sentence is read as `<s> w1 … wm </s>`. With c the count of an n-gram in
/// that text, the adjusted count a of an n-gram x of order k is
///
/// - c(x) at the highest order, and for n-grams that start with `<s>` (nothing can
///   precede `<s>`, so its n-grams are never continuations);
/// - otherwise the continuation count N1+(• x): the number of distinct words v with
///   c(v x) > 0.
///
/// Per order, from t_j (the number of n-grams with a = j):
///
///     Y = t1 / (t1 + 2 t2),  D_j = j − (j + 1) · Y · t_{j+1} / t_j   (j = 1, 2, 3)
///
/// and D(a) = D_min(a,3). For a context h with S(h) = Σ_w a(h w) and N_j(h) the
/// number of words w with a(h w) = j (3: three or more),
///
///     γ(h) = (D1 N1(h) + D2 N2(h) + D3 N3+(h)) / S(h)
///     p(w | h) = (a(h w) − D(a(h w))) / S(h) + γ(h) · p(w | h′)     (h′: h without its oldest word)
///
/// down to the unigrams, interpolated with the uniform distribution over the
/// vocabulary V (every word of the text, `</s>` and `<unk>`; not `<s>`):
/// p(w) = (a(w) − D(a(w))) / S + γ / |V|.
///
/// `<unk>` never occurs in training text, so its adjusted count is 0 and it gets
/// exactly the share γ/|V| of the unigram interpolation mass that any unseen word
/// would get (lmplz's default; SRILM instead gives it all of γ). The model stays a
/// distribution over its vocabulary, and an unknown word is priced like a word
/// seen nowhere, not like a frequent one. `<s>` gets probability 1 (log10 0), as
/// lmplz writes it: it is only ever context.
///
/// In ARPA form p(w | h) is the probability of each listed n-gram and log10 γ(h)
/// the back-off weight of each context, so the back-off rule reproduces the
/// interpolated probabilities for every word and context.
public struct KneserNeyBuilder: Sendable {
    public let options: KneserNeyOptions
    private var words: [String]
    private var wordIDs: [String: WordID]
    /// Raw counts per order: `grams[k - 1]` indexes the k-grams, `raw[k - 1]` counts them.
    private var grams: [NGramIndex]
    private var raw: [[Int]]
    public private(set) var sentences = 0
    public private(set) var tokens = 0

    static let unknownID: WordID = 0
    static let beginID: WordID = 1
    static let endID: WordID = 2

    public init(options: KneserNeyOptions) throws {
        guard options.order >= 1 else {
            throw NGramError(.build, "the order must be at least 1, not \(options.order)")
        }
        if let f = options.discountFallback {
            guard f.count == 3, (0..<3).allSatisfy({ f[$0] > 0 && f[$0] <= Double($0 + 1) }) else {
                throw NGramError(
                    .build, "discountFallback must be three discounts D1, D2, D3+ with 0 < D_j ≤ j, not \(f)")
            }
        }
        self.options = options
        words = [NGramVocabulary.unknown, NGramVocabulary.beginSentence, NGramVocabulary.endSentence]
        wordIDs = [:]
        for (i, w) in words.enumerated() { wordIDs[w] = WordID(i) }
        grams = (1...options.order).map { NGramIndex(order: $0) }
        raw = Array(repeating: [], count: options.order)
    }

    /// Adds one sentence of tokens. A refused sentence adds nothing.
    public mutating func add(_ sentence: [String]) throws {
        var ids: [WordID] = [Self.beginID]
        ids.reserveCapacity(sentence.count + 2)
        for token in sentence {
            if let special = wordIDs[token], special <= Self.endID {
                if options.specialTokens == .skip { continue }
                throw NGramError(
                    .build,
                    "sentence \(sentences + 1) contains \(token), which the model reserves for itself; remove it or skip such tokens"
                )
            }
        }
        for token in sentence {
            if let id = wordIDs[token] {
                if id > Self.endID { ids.append(id) }
            } else {
                let id = WordID(words.count)
                words.append(token)
                wordIDs[token] = id
                ids.append(id)
            }
        }
        ids.append(Self.endID)
        sentences += 1
        tokens += ids.count - 2
        for k in 1...options.order where ids.count >= k {
            for start in 0...(ids.count - k) {
                let (row, inserted) = grams[k - 1].insert(ids[start..<(start + k)])
                if inserted { raw[k - 1].append(1) } else { raw[k - 1][row] += 1 }
            }
        }
    }

    /// Adds one sentence split at white space.
    public mutating func add(sentence: String) throws { try add(whitespaceTokens(sentence)) }

    /// Estimates the model from the sentences added so far.
    public func build() throws -> KneserNeyModel {
        guard sentences > 0 else { throw NGramError(.build, "no sentences to estimate a model from") }
        let order = options.order
        let vocabularySize = words.count
        let bos = Self.beginID

        // Adjusted counts, per order, by row of `grams`; unigrams by word id.
        var adjusted: [[Int]] = raw
        for k in stride(from: order - 1, through: 1, by: -1) {
            var continuation = [Int](repeating: 0, count: grams[k - 1].count)
            for row in 0..<grams[k].count {
                continuation[grams[k - 1].find(grams[k].key(row).dropFirst())!] += 1
            }
            for row in 0..<grams[k - 1].count where grams[k - 1].key(row).first! != bos {
                adjusted[k - 1][row] = continuation[row]
            }
        }
        var unigramAdjusted = [Int](repeating: 0, count: vocabularySize)
        for row in 0..<grams[0].count {
            let w = grams[0].key(row).first!
            if w != bos { unigramAdjusted[Int(w)] = adjusted[0][row] }
        }
        adjusted[0] = unigramAdjusted

        // Discounts from counts of counts.
        var discounts: [KneserNeyDiscounts] = []
        for k in 1...order {
            var t = [0, 0, 0, 0]
            for a in adjusted[k - 1] where a >= 1 && a <= 4 { t[a - 1] += 1 }
            if let d = Self.discounts(t) {
                discounts.append(KneserNeyDiscounts(d: d, countsOfCounts: t, fallback: false))
            } else if let f = options.discountFallback {
                discounts.append(KneserNeyDiscounts(d: f, countsOfCounts: t, fallback: true))
            } else {
                throw NGramError(
                    .build,
                    "the \(k)-grams' counts of counts t1…t4 = \(t.map(String.init).joined(separator: ", ")) cannot give modified Kneser–Ney discounts (each D_j needs n-grams seen j and j + 1 times, and 0 < D_j ≤ j); use more text, a lower order, or set discountFallback (lmplz suggests 0.5, 1, 1.5)"
                )
            }
        }
        func discount(_ k: Int, _ a: Int) -> Double { a == 0 ? 0 : discounts[k - 1].d[min(a, 3) - 1] }

        // Context sums S(h) and γ(h): order k's contexts are the rows of order k − 1
        // (unigram contexts by word id); order 1's one context is the empty one.
        var contextSum: [[Double]] = []
        var gamma: [[Double]] = []
        for k in 1...order {
            let contexts = k == 1 ? 1 : (k == 2 ? vocabularySize : grams[k - 2].count)
            var sum = [Double](repeating: 0, count: contexts)
            var mass = [Double](repeating: 0, count: contexts)
            let rows = k == 1 ? vocabularySize : grams[k - 1].count
            for row in 0..<rows {
                let a = adjusted[k - 1][row]
                guard a > 0 else { continue }
                let c: Int
                if k == 1 {
                    c = 0
                } else if k == 2 {
                    c = Int(grams[1].key(row).first!)
                } else {
                    c = grams[k - 2].find(grams[k - 1].key(row).dropLast())!
                }
                sum[c] += Double(a)
                mass[c] += discount(k, a)
            }
            contextSum.append(sum)
            gamma.append(zip(mass, sum).map { $1 > 0 ? $0 / $1 : 0 })
        }

        // Interpolated probabilities, lowest order first.
        var unigram = [Double](repeating: 0, count: vocabularySize)
        let uniform = 1 / Double(vocabularySize - 1)
        for w in 0..<vocabularySize where WordID(w) != bos {
            let a = adjusted[0][w]
            unigram[w] = (Double(a) - discount(1, a)) / contextSum[0][0] + gamma[0][0] * uniform
        }
        unigram[Int(bos)] = 1
        var probability: [[Double]] = [unigram]
        for k in stride(from: 2, through: order, by: 1) {
            var p = [Double](repeating: 0, count: grams[k - 1].count)
            for row in 0..<grams[k - 1].count {
                let key = grams[k - 1].key(row)
                let a = adjusted[k - 1][row]
                let c = k == 2 ? Int(key.first!) : grams[k - 2].find(key.dropLast())!
                let lower = k == 2 ? Int(key.last!) : grams[k - 2].find(key.dropFirst())!
                p[row] = (Double(a) - discount(k, a)) / contextSum[k - 1][c] + gamma[k - 1][c] * probability[k - 2][lower]
            }
            probability.append(p)
        }

        // The model: unigrams by id, higher orders sorted by their ids.
        func log10Prob(_ p: Double) -> Double { min(0, log10(p)) }
        func backoff(_ k: Int, _ context: Int) -> Double {
            k < order && contextSum[k][context] > 0 ? log10(gamma[k][context]) : noExtension
        }
        let unigramLog10 = probability[0].map(log10Prob)
        let unigramBackoff = (0..<vocabularySize).map { order > 1 ? backoff(1, $0) : noExtension }
        var tables: [OrderTable] = []
        for k in stride(from: 2, through: order, by: 1) {
            let g = grams[k - 1]
            let rows = (0..<g.count).sorted { g.key($0).lexicographicallyPrecedes(g.key($1)) }
            var table = OrderTable(order: k, capacity: rows.count, highest: k == order)
            for row in rows {
                table.index.insert(g.key(row))
                table.log10Prob.append(log10Prob(probability[k - 1][row]))
                if k < order { table.backoff.append(backoff(k, row)) }
            }
            table.listed = rows.count
            tables.append(table)
        }
        let model = try NGramModel(
            vocabulary: NGramVocabulary(words: words), unigramLog10: unigramLog10, unigramBackoff: unigramBackoff,
            tables: tables, unknownWasAdded: false, lines: nil)
        return KneserNeyModel(model: model, discounts: discounts, sentences: sentences, tokens: tokens)
    }

    /// Chen & Goodman's estimate (their equation 26) from t1…t4, or nil when a t_j
    /// is 0 or a discount falls outside (0, j].
    static func discounts(_ t: [Int]) -> [Double]? {
        guard t.allSatisfy({ $0 > 0 }) else { return nil }
        let y = Double(t[0]) / (Double(t[0]) + 2 * Double(t[1]))
        var d: [Double] = []
        for j in 1...3 {
            let dj = Double(j) - Double(j + 1) * y * Double(t[j]) / Double(t[j - 1])
            guard dj > 0 && dj <= Double(j) else { return nil }
            d.append(dj)
        }
        return d
    }
}

extension KneserNeyBuilder {
    /// Estimates a model from sentences of tokens in one call.
    public static func estimate(_ sentences: [[String]], options: KneserNeyOptions) throws -> KneserNeyModel {
        var builder = try KneserNeyBuilder(options: options)
        for s in sentences { try builder.add(s) }
        return try builder.build()
    }
}
