/// Length of the character shingles used for near matching.
///
/// 5 rather than 3: there are only a few tens of thousands of distinct character
/// 3-grams in a language, so in a large dataset even a text's rarest 3-grams occur
/// in thousands of other texts and an exact inverted index degenerates into
/// comparing everything with everything (measured: 180 s for 10,000 × 10,000).
/// Character 5-grams are selective enough for the index and still tolerate edits.
public let shingleLength = 5

/// Character q-gram shingles (q = ``shingleLength``) of already-normalised
/// scalars, as a sorted array of distinct 64-bit hashes (FNV-1a over the scalar
/// values, then a SplitMix64 finaliser; deterministic across runs and machines).
/// A non-empty text shorter than q scalars yields a single shingle of the whole
/// text; an empty text yields none.
func shingleSet(_ scalars: [Unicode.Scalar], q: Int = shingleLength) -> [UInt64] {
    let n = scalars.count
    if n == 0 { return [] }
    @inline(__always) func hash(_ lo: Int, _ hi: Int) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ UInt64(hi - lo)
        for k in lo..<hi {
            h ^= UInt64(scalars[k].value)
            h &*= 0x0000_0100_0000_01B3
        }
        h ^= h >> 30; h &*= 0xBF58_476D_1CE4_E5B9
        h ^= h >> 27; h &*= 0x94D0_49BB_1331_11EB
        return h ^ (h >> 31)
    }
    if n < q { return [hash(0, n)] }
    var out: [UInt64] = []
    out.reserveCapacity(n - q + 1)
    for i in 0...(n - q) { out.append(hash(i, i + q)) }
    out.sort()
    var w = 0
    for r in 0..<out.count where r == 0 || out[r] != out[w - 1] {
        out[w] = out[r]
        w += 1
    }
    out.removeLast(out.count - w)
    return out
}

/// Jaccard similarity |A∩B| / |A∪B| of the character 5-gram shingle sets of the
/// two texts after ``normalizeText(_:options:)`` with the given options.
/// Two texts that are both empty after normalisation have similarity 1.
public func shingleJaccard(_ a: String, _ b: String, options: NormalizationOptions = .matching) -> Double {
    let sa = shingleSet(normalizedScalars(a, options: options))
    let sb = shingleSet(normalizedScalars(b, options: options))
    if sa.isEmpty && sb.isEmpty { return 1 }
    let inter = sortedIntersectionCount(sa, sb)
    return Double(inter) / Double(sa.count + sb.count - inter)
}

func sortedIntersectionCount<T: Comparable>(_ a: [T], _ b: [T]) -> Int {
    var i = 0, j = 0, c = 0
    while i < a.count && j < b.count {
        if a[i] < b[j] { i += 1 } else if a[i] > b[j] { j += 1 } else { c += 1; i += 1; j += 1 }
    }
    return c
}

/// Smallest overlap that a set of `size` elements needs with another set for their
/// Jaccard similarity to reach `threshold`: ceil(threshold · size), at least 1.
@inline(__always)
func minimumOverlap(size: Int, threshold: Double) -> Int {
    max(1, Int((threshold * Double(size) - 1e-9).rounded(.up)))
}

/// An exact similarity join index for Jaccard similarity over shingle sets, using
/// prefix filtering (the AllPairs idea): shingles are ordered globally by
/// ascending document frequency, and two sets with Jaccard ≥ t must share at least
/// one element among the first |x| − ⌈t·|x|⌉ + 1 of each. Only those prefixes are
/// indexed and probed, so posting lists stay short (they hold rare shingles), and
/// every candidate is verified exactly. Unlike MinHash-LSH it never misses a match.
struct NearDuplicateIndex {
    let threshold: Double
    /// Shingle hash → rank (position in the global order).
    private var rankOf: ShingleTable
    /// Each document's shingles as ascending ranks (rarest first), flattened.
    private var docOffsets: [Int] = [0]
    private var docRanks: [Int32] = []
    /// Posting lists (document ids) per rank, flattened (CSR).
    private var postingOffsets: [Int] = []
    private var postings: [Int32] = []

    var documentCount: Int { docOffsets.count - 1 }

    init(documents: [[UInt64]], threshold: Double) {
        self.threshold = threshold
        let total = documents.reduce(0) { $0 + $1.count }
        // Document frequency of every shingle.
        var table = ShingleTable(capacity: total)
        for d in documents {
            for s in d { table.increment(s) }
        }
        // Global order: ascending document frequency, ties by table slot (deterministic).
        var keys: [UInt64] = []
        keys.reserveCapacity(table.count)
        for slot in 0..<table.keys.count where table.keys[slot] != 0 {
            keys.append(UInt64(table.values[slot]) << 32 | UInt64(slot))
        }
        keys.sort()
        for (rank, k) in keys.enumerated() { table.values[Int(k & 0xFFFF_FFFF)] = Int32(rank) }
        rankOf = table
        let tokenCount = keys.count

        docRanks.reserveCapacity(total)
        docOffsets.reserveCapacity(documents.count + 1)
        var postingCounts = [Int](repeating: 0, count: tokenCount + 1)
        var scratch: [Int32] = []
        for d in documents {
            scratch.removeAll(keepingCapacity: true)
            for s in d { scratch.append(rankOf.value(s)!) }
            scratch.sort()
            docRanks.append(contentsOf: scratch)
            docOffsets.append(docRanks.count)
            if !scratch.isEmpty {
                let p = scratch.count - minimumOverlap(size: scratch.count, threshold: threshold) + 1
                for k in 0..<p { postingCounts[Int(scratch[k]) + 1] += 1 }
            }
        }
        for i in 1..<postingCounts.count { postingCounts[i] += postingCounts[i - 1] }
        postingOffsets = postingCounts
        postings = [Int32](repeating: 0, count: postingCounts.last ?? 0)
        var fill = postingCounts
        for doc in 0..<documents.count {
            let lo = docOffsets[doc], hi = docOffsets[doc + 1]
            let n = hi - lo
            if n == 0 { continue }
            let p = n - minimumOverlap(size: n, threshold: threshold) + 1
            for k in lo..<(lo + p) {
                let r = Int(docRanks[k])
                postings[fill[r]] = Int32(doc)
                fill[r] += 1
            }
        }
    }

    /// Reusable per-caller scratch space for ``query(_:scratch:)``.
    struct Scratch {
        var stamp: [Int32]
        var generation: Int32 = 0
        var candidates: [Int32] = []
        var ranks: [Int32] = []
        init(documentCount: Int) { stamp = [Int32](repeating: 0, count: documentCount) }
    }

    /// All indexed documents whose Jaccard similarity with `shingles` is ≥ threshold,
    /// in ascending document order.
    func query(_ shingles: [UInt64], scratch: inout Scratch) -> [(document: Int, similarity: Double)] {
        let size = shingles.count
        if size == 0 || documentCount == 0 { return [] }
        scratch.ranks.removeAll(keepingCapacity: true)
        var unseen = 0
        for s in shingles {
            if let r = rankOf.value(s) { scratch.ranks.append(r) } else { unseen += 1 }
        }
        scratch.ranks.sort()
        // Unseen shingles have document frequency 0, so they come first in the global order.
        let prefix = size - minimumOverlap(size: size, threshold: threshold) + 1
        let knownPrefix = min(scratch.ranks.count, max(0, prefix - unseen))
        if knownPrefix == 0 { return [] }

        scratch.generation &+= 1
        if scratch.generation == Int32.max {
            scratch.generation = 1
            for i in scratch.stamp.indices { scratch.stamp[i] = 0 }
        }
        let gen = scratch.generation
        scratch.candidates.removeAll(keepingCapacity: true)
        let minLen = Double(size) * threshold - 1e-9
        let maxLen = Double(size) / threshold + 1e-9
        for k in 0..<knownPrefix {
            let r = Int(scratch.ranks[k])
            for p in postingOffsets[r]..<postingOffsets[r + 1] {
                let doc = Int(postings[p])
                if scratch.stamp[doc] == gen { continue }
                scratch.stamp[doc] = gen
                let len = Double(docOffsets[doc + 1] - docOffsets[doc])
                if len < minLen || len > maxLen { continue }
                scratch.candidates.append(Int32(doc))
            }
        }
        scratch.candidates.sort()
        var result: [(document: Int, similarity: Double)] = []
        for c in scratch.candidates {
            let doc = Int(c)
            let lo = docOffsets[doc], hi = docOffsets[doc + 1]
            var i = 0, j = lo, inter = 0
            let ranks = scratch.ranks
            while i < ranks.count && j < hi {
                let a = ranks[i], b = docRanks[j]
                if a < b { i += 1 } else if a > b { j += 1 } else { inter += 1; i += 1; j += 1 }
            }
            let sim = Double(inter) / Double(size + (hi - lo) - inter)
            if sim >= threshold - 1e-12 { result.append((doc, sim)) }
        }
        return result
    }
}

/// Open-addressing hash table from shingle hash to an `Int32`, much faster than
/// `Dictionary` here because the keys are already well-mixed 64-bit hashes.
/// Key 0 marks an empty slot, so a shingle hashing to 0 is stored as 1.
struct ShingleTable {
    var keys: [UInt64]
    var values: [Int32]
    private(set) var count = 0

    private var mask: Int

    /// `capacity` is a hint; the table doubles whenever it becomes half full.
    init(capacity: Int) {
        var size = 1 << 12
        while size < capacity * 2 && size < (1 << 20) { size <<= 1 }
        keys = [UInt64](repeating: 0, count: size)
        values = [Int32](repeating: 0, count: size)
        mask = size - 1
    }

    private mutating func grow() {
        let oldKeys = keys, oldValues = values
        let size = keys.count * 2
        keys = [UInt64](repeating: 0, count: size)
        values = [Int32](repeating: 0, count: size)
        mask = size - 1
        for (i, k) in oldKeys.enumerated() where k != 0 {
            var j = Int(truncatingIfNeeded: k) & mask
            while keys[j] != 0 { j = (j + 1) & mask }
            keys[j] = k
            values[j] = oldValues[i]
        }
    }

    @inline(__always) private static func key(_ k: UInt64) -> UInt64 { k == 0 ? 1 : k }

    mutating func increment(_ raw: UInt64) {
        let k = Self.key(raw)
        var i = Int(truncatingIfNeeded: k) & mask
        while true {
            let e = keys[i]
            if e == k { values[i] += 1; return }
            if e == 0 {
                keys[i] = k
                values[i] = 1
                count += 1
                if count * 2 > keys.count { grow() }
                return
            }
            i = (i + 1) & mask
        }
    }

    @inline(__always) func value(_ raw: UInt64) -> Int32? {
        let k = Self.key(raw)
        var i = Int(truncatingIfNeeded: k) & mask
        while true {
            let e = keys[i]
            if e == k { return values[i] }
            if e == 0 { return nil }
            i = (i + 1) & mask
        }
    }
}
