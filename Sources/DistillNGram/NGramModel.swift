/// The n-grams of one order above 1, with their log10 probabilities and back-off weights.
struct OrderTable: Sendable {
    var index: NGramIndex
    /// log10 p(w | context) for each row.
    var log10Prob: [Double]
    /// log10 back-off weight of each row used as a context; empty at the highest order.
    /// `-0.0` (by bit pattern) marks an n-gram that no longer n-gram extends (kenlm's
    /// "no extension" mark): it is dropped from the scoring state.
    var backoff: [Double]
    /// Rows `0..<listed` are the model's own n-grams; rows after them are fillers
    /// added at load for suffixes the file leaves out (see `NGramModel.complete`).
    var listed: Int

    init(order: Int, capacity: Int, highest: Bool) {
        index = NGramIndex(order: order, capacity: capacity)
        log10Prob = []
        log10Prob.reserveCapacity(capacity)
        backoff = []
        if !highest { backoff.reserveCapacity(capacity) }
        listed = 0
    }
}

/// The bit pattern kenlm uses for "this n-gram is not a context": a back-off of -0.0.
let noExtension: Double = -0.0

@inline(__always)
func hasExtension(_ backoff: Double) -> Bool { backoff.bitPattern != noExtension.bitPattern }

/// A back-off language model of any order, held as hash tables keyed by word ids,
/// scoring exactly as kenlm's probing model does.
///
/// For a word w after context h₁…hₖ (h₁ the most recent), the score is the log10
/// probability of the longest listed n-gram ending in w that the context reaches,
/// plus the back-off weights of every longer context that is listed:
///
///     log10 p(w | hₖ…h₁) = log10 p(w | hⱼ₋₁…h₁) + Σ_{i=j}^{k} b(hᵢ…h₁)
///
/// where j is the length of that longest n-gram and b is 0 for contexts the model
/// does not list. Words outside the vocabulary are `<unk>`. Sentences start from
/// `<s>` and end by predicting `</s>`, as kenlm's `score(s, bos=True, eos=True)`.
///
/// - Important: a value type of arrays: copies share storage, and it is `Sendable`,
///   so one loaded model can be read from any number of threads.
public struct NGramModel: Sendable {
    public let vocabulary: NGramVocabulary
    /// The highest order (n of the n-grams).
    public let order: Int
    /// How many n-grams of each order the model lists (index 0: unigrams).
    public let counts: [Int]
    /// True when the ARPA file had no `<unk>`: it was added with log10 probability
    /// -100, as kenlm does, so an unknown word costs 100 orders of magnitude.
    public let unknownWasAdded: Bool

    let unigramLog10: [Double]
    let unigramBackoff: [Double]
    /// Orders 2…order: `tables[k - 2]` holds the k-grams.
    let tables: [OrderTable]

    /// kenlm's `<unk>` probability when an ARPA file has none.
    public static let missingUnknownLog10: Double = -100

    /// Builds the model from listed n-grams and completes it as kenlm does (see
    /// `complete`). `lines[k - 1][r]` is the file line of row r of order k, for errors.
    init(
        vocabulary: NGramVocabulary, unigramLog10: [Double], unigramBackoff: [Double], tables: [OrderTable],
        unknownWasAdded: Bool, lines: [[Int32]]?
    ) throws {
        self.vocabulary = vocabulary
        order = tables.count + 1
        counts = [unigramLog10.count] + tables.map(\.listed)
        self.unknownWasAdded = unknownWasAdded
        var unigramBackoff = unigramBackoff
        var tables = tables
        try Self.complete(
            vocabulary: vocabulary, unigramLog10: unigramLog10, unigramBackoff: &unigramBackoff, tables: &tables, lines: lines)
        self.unigramLog10 = unigramLog10
        self.unigramBackoff = unigramBackoff
        self.tables = tables
    }

    /// Makes the tables answer as kenlm's do, in two steps:
    ///
    /// 1. Suffix fillers. Every suffix of a listed n-gram must be findable, since the
    ///    search climbs from short to long n-grams and stops at the first miss. A file
    ///    pruned like SRILM's may list "a b c" without "b c"; kenlm then inserts
    ///    "b c" with the probability the back-off rule gives it,
    ///    log10 p(c | b) = b(b) + log10 p(c), so probabilities are unchanged while
    ///    the n-gram length kenlm reports counts the filler. So do we.
    ///    A filler's context, when listed, is marked as extending (below), as kenlm
    ///    marks the back-off weights it used to price the filler.
    /// 2. Contexts. The context (all words but the last) of every listed n-gram must
    ///    be an n-gram of the order below, listed or filler; kenlm refuses the file
    ///    otherwise, and so do we, naming the line. Each context is marked as extending
    ///    (a back-off of -0.0 becomes +0.0) so the scoring state keeps it.
    private static func complete(
        vocabulary: NGramVocabulary, unigramLog10: [Double], unigramBackoff: inout [Double], tables: inout [OrderTable],
        lines: [[Int32]]?
    ) throws {
        let order = tables.count + 1
        guard order >= 2 else { return }
        // 1. Fillers for missing suffixes, at orders 2…order-1.
        if order >= 3 {
            for n in stride(from: order, through: 3, by: -1) {
                for row in 0..<tables[n - 2].listed {
                    let key = tables[n - 2].index.key(row)
                    for m in stride(from: n - 1, through: 2, by: -1) {
                        let (_, inserted) = tables[m - 2].index.insert(key.dropFirst(n - m))
                        if !inserted { break }
                        tables[m - 2].log10Prob.append(.nan)
                        tables[m - 2].backoff.append(noExtension)
                    }
                }
            }
        }
        // Filler probabilities, lowest order first so a filler's own suffix is ready.
        for m in 2..<order where tables[m - 2].index.count > tables[m - 2].listed {
            for row in tables[m - 2].listed..<tables[m - 2].index.count {
                let key = tables[m - 2].index.key(row)
                let lower: Double
                let context: Double
                if m == 2 {
                    lower = unigramLog10[Int(key.last!)]
                    context = unigramBackoff[Int(key.first!)]
                    if !hasExtension(context) { unigramBackoff[Int(key.first!)] = 0 }
                } else {
                    lower = tables[m - 3].log10Prob[tables[m - 3].index.find(key.dropFirst())!]
                    if let c = tables[m - 3].index.find(key.dropLast()) {
                        context = tables[m - 3].backoff[c]
                        if !hasExtension(context) { tables[m - 3].backoff[c] = 0 }
                    } else {
                        context = 0
                    }
                }
                tables[m - 2].log10Prob[row] = lower + context
            }
        }
        // 2. Contexts exist, and are marked as extending.
        for row in 0..<tables[0].listed {
            let first = Int(tables[0].index.key(row).first!)
            if !hasExtension(unigramBackoff[first]) { unigramBackoff[first] = 0 }
        }
        guard order >= 3 else { return }
        for n in 3...order {
            for row in 0..<tables[n - 2].listed {
                let key = tables[n - 2].index.key(row)
                guard let c = tables[n - 3].index.find(key.dropLast()) else {
                    let words = key.map { vocabulary[$0] }
                    throw NGramError(
                        .format, line: lines.map { Int($0[n - 1][row]) },
                        "the context \"\(words.dropLast().joined(separator: " "))\" of the \(n)-gram \"\(words.joined(separator: " "))\" is not a \(n - 1)-gram (kenlm refuses such files too)"
                    )
                }
                if !hasExtension(tables[n - 3].backoff[c]) { tables[n - 3].backoff[c] = 0 }
            }
        }
    }

    /// Bytes held by the tables, for memory reports.
    public var storageBytes: Int {
        var total = (unigramLog10.capacity + unigramBackoff.capacity) * MemoryLayout<Double>.stride
        for t in tables {
            total += t.index.storageBytes + (t.log10Prob.capacity + t.backoff.capacity) * MemoryLayout<Double>.stride
        }
        return total
    }
}
