/// A byte-pair-encoding model: a vocabulary and the merges that build its tokens from characters.
///
/// A pre-token starts as one symbol per character (per byte for byte-level vocabularies, whose
/// characters are byte spellings; `<0xNN>` byte tokens for characters outside a byte-fallback
/// vocabulary). Then, repeatedly, the adjacent pair with the best merge rank is replaced by the
/// token it forms, the leftmost first among equal ranks, until no adjacent pair has a merge.
/// Candidates wait in a priority queue keyed by (rank, position) and symbols form a linked list,
/// so a word of n characters costs O(n log n), not the O(n²) of rescanning all pairs each step.
///
/// SentencePiece vocabularies from GGUF files have scores instead of merges: llama.cpp merges
/// the adjacent pair whose concatenation is the token with the highest score. `init(spmTokens:)`
/// turns that into ranks (by descending score) over every pair of tokens that concatenates to a
/// token, so the same loop runs both.
struct BPEModel: Sendable {
    /// Token strings by id (nil for ids the vocabulary leaves out).
    let pieces: [String?]
    let ids: [ExactText: Int]
    /// The id of every token that is a single scalar.
    private let scalarIds: [UInt32: Int32]
    /// The same for scalars below `smallScalarLimit` (all byte spellings), as a flat table.
    private let smallScalarIds: [Int32]
    private static let smallScalarLimit: UInt32 = 0x180
    /// (left id << 32 | right id) → (rank << 32 | merged id).
    private let merges: [UInt64: UInt64]
    private let unknown: Int32?
    private let fuseUnknown: Bool
    /// Ids of `<0x00>`...`<0xFF>` (-1 when absent), when byte fallback is on.
    private let byteIds: [Int32]?
    private let ignoreMerges: Bool
    private let continuingPrefix: [Unicode.Scalar]
    private let endSuffix: [Unicode.Scalar]

    /// The highest id plus one.
    var idCount: Int { pieces.count }

    struct Options {
        var unknown: String?
        var fuseUnknown = false
        var byteFallback = false
        var ignoreMerges = false
        var continuingPrefix = ""
        var endSuffix = ""
    }

    /// A model from a vocabulary (token → id) and merges in rank order. `path` names where the
    /// merges came from, for errors.
    init(vocabulary: [ExactText: Int], merges pairs: [(String, String)], options: Options, path: String) throws {
        let prefixCount = options.continuingPrefix.unicodeScalars.count
        var table: [UInt64: UInt64] = [:]
        table.reserveCapacity(pairs.count)
        for (rank, (left, right)) in pairs.enumerated() {
            guard let l = vocabulary[ExactText(left)] else {
                throw TokenizerError(.malformed, path: "\(path)[\(rank)]", "merge token \"\(left)\" is not in the vocabulary")
            }
            guard let r = vocabulary[ExactText(right)] else {
                throw TokenizerError(.malformed, path: "\(path)[\(rank)]", "merge token \"\(right)\" is not in the vocabulary")
            }
            // With a continuing-subword prefix the right half carries it; the merged token does not.
            let rightTail = prefixCount == 0 ? right : String(String.UnicodeScalarView(right.unicodeScalars.dropFirst(prefixCount)))
            guard let merged = vocabulary[ExactText(left + rightTail)] else {
                throw TokenizerError(
                    .malformed, path: "\(path)[\(rank)]", "merged token \"\(left + rightTail)\" is not in the vocabulary")
            }
            table[Self.pairKey(Int32(l), Int32(r))] = UInt64(rank) << 32 | UInt64(merged)
        }
        try self.init(vocabulary: vocabulary, mergeTable: table, options: options)
    }

    /// A SentencePiece model with scores (GGUF `llama`): token strings by id and their scores.
    init(spmTokens tokens: [String], scores: [Float], options: Options) throws {
        var vocabulary: [ExactText: Int] = [:]
        vocabulary.reserveCapacity(tokens.count)
        for (id, token) in tokens.enumerated() { vocabulary[ExactText(token)] = id }
        // Rank = position of the merged token's score among all scores, best first.
        let distinct = Array(Set(scores.filter { !$0.isNaN })).sorted(by: >)
        var rankOfScore: [Float: UInt64] = [:]
        for (rank, score) in distinct.enumerated() { rankOfScore[score] = UInt64(rank) }
        var table: [UInt64: UInt64] = [:]
        for (id, token) in tokens.enumerated() where vocabulary[ExactText(token)] == id {
            guard let rank = rankOfScore[scores[id]] else { continue }
            let scalars = Array(token.unicodeScalars)
            guard scalars.count > 1 else { continue }
            for cut in 1..<scalars.count {
                guard let l = vocabulary[ExactText(scalars: scalars[..<cut])],
                    let r = vocabulary[ExactText(scalars: scalars[cut...])]
                else { continue }
                table[Self.pairKey(Int32(l), Int32(r))] = rank << 32 | UInt64(id)
            }
        }
        try self.init(vocabulary: vocabulary, mergeTable: table, options: options)
    }

    private init(vocabulary: [ExactText: Int], mergeTable: [UInt64: UInt64], options: Options) throws {
        let highest = vocabulary.values.max() ?? -1
        // Ids index a table: a stray huge id must be an error, not a giant allocation (and the
        // comparison comes before the + 1, which would trap on an id of Int.max).
        guard highest < max(4 * vocabulary.count, vocabulary.count + 1_000_000) else {
            throw TokenizerError(
                .malformed, path: "model.vocab", "id \(highest) is far beyond the \(vocabulary.count) tokens of the vocabulary")
        }
        let count = highest + 1
        var pieces = [String?](repeating: nil, count: count)
        var scalarIds: [UInt32: Int32] = [:]
        var small = [Int32](repeating: -1, count: Int(Self.smallScalarLimit))
        for (token, id) in vocabulary {
            guard id >= 0, id <= Int(Int32.max) else {
                throw TokenizerError(.malformed, path: "model.vocab", "token \"\(token.text)\" has id \(id), outside 0...\(Int32.max)")
            }
            pieces[id] = token.text
            var iterator = token.text.unicodeScalars.makeIterator()
            if let only = iterator.next(), iterator.next() == nil {
                scalarIds[only.value] = Int32(id)
                if only.value < Self.smallScalarLimit { small[Int(only.value)] = Int32(id) }
            }
        }
        self.pieces = pieces
        self.ids = vocabulary
        self.scalarIds = scalarIds
        self.smallScalarIds = small
        self.merges = mergeTable
        if let name = options.unknown {
            guard let id = vocabulary[ExactText(name)] else {
                throw TokenizerError(.malformed, path: "model.unk_token", "unknown token \"\(name)\" is not in the vocabulary")
            }
            unknown = Int32(id)
        } else {
            unknown = nil
        }
        fuseUnknown = options.fuseUnknown
        if options.byteFallback {
            let hex = Array("0123456789ABCDEF")
            byteIds = (0..<256).map { byte in
                vocabulary[ExactText("<0x\(hex[byte >> 4])\(hex[byte & 15])>")].map { Int32($0) } ?? -1
            }
        } else {
            byteIds = nil
        }
        ignoreMerges = options.ignoreMerges
        continuingPrefix = Array(options.continuingPrefix.unicodeScalars)
        endSuffix = Array(options.endSuffix.unicodeScalars)
    }

    @inline(__always)
    private static func pairKey(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    @inline(__always)
    private func scalarId(_ scalar: Unicode.Scalar) -> Int32? {
        if scalar.value < Self.smallScalarLimit {
            let id = smallScalarIds[Int(scalar.value)]
            return id < 0 ? nil : id
        }
        return scalarIds[scalar.value]
    }

    /// Appends the ids of one pre-token.
    func encode(_ piece: [Unicode.Scalar], into out: inout [Int]) {
        guard !piece.isEmpty else { return }
        if ignoreMerges, let id = ids[ExactText(scalars: piece)] {
            out.append(id)
            return
        }
        var symbols = initialSymbols(piece)
        mergeAll(&symbols)
        for id in symbols { out.append(Int(id)) }
    }

    /// One symbol per character: its token, else its bytes' fallback tokens, else the unknown
    /// token (consecutive unknowns fused into one when `fuseUnknown`), else nothing.
    private func initialSymbols(_ piece: [Unicode.Scalar]) -> [Int32] {
        var symbols: [Int32] = []
        symbols.reserveCapacity(piece.count)
        let affixed = !continuingPrefix.isEmpty || !endSuffix.isEmpty
        var pendingUnknown = false
        for (i, scalar) in piece.enumerated() {
            let id: Int32?
            if affixed {
                var text = i > 0 ? continuingPrefix : []
                text.append(scalar)
                if i == piece.count - 1 { text.append(contentsOf: endSuffix) }
                id = ids[ExactText(scalars: text)].map { Int32($0) }
            } else {
                id = scalarId(scalar)
            }
            if let id {
                if pendingUnknown, let unknown { symbols.append(unknown) }
                pendingUnknown = false
                symbols.append(id)
                continue
            }
            if let byteIds {
                var fallback: [Int32] = []
                var complete = true
                for byte in UTF8.encode(scalar)! {
                    let b = byteIds[Int(byte)]
                    if b < 0 {
                        complete = false
                        break
                    }
                    fallback.append(b)
                }
                if complete {
                    // The reference leaves a pending unknown pending across byte tokens.
                    symbols.append(contentsOf: fallback)
                    continue
                }
            }
            guard let unknown else { continue }
            if pendingUnknown && !fuseUnknown { symbols.append(unknown) }
            pendingUnknown = true
        }
        if pendingUnknown, let unknown { symbols.append(unknown) }
        return symbols
    }

    /// Applies merges until none applies (see the type's comment).
    private func mergeAll(_ symbols: inout [Int32]) {
        let n = symbols.count
        guard n > 1, !merges.isEmpty else { return }
        var next = [Int32](unsafeUninitializedCapacity: n) { buffer, count in
            for i in 0..<n { buffer[i] = Int32(i + 1) }
            buffer[n - 1] = -1
            count = n
        }
        var previous = [Int32](unsafeUninitializedCapacity: n) { buffer, count in
            for i in 0..<n { buffer[i] = Int32(i - 1) }
            count = n
        }
        var queue = MinHeap()
        for i in 0..<(n - 1) {
            if let merge = merges[Self.pairKey(symbols[i], symbols[i + 1])] {
                queue.push(merge & 0xFFFF_FFFF_0000_0000 | UInt64(i))
            }
        }
        var merged = false
        while let top = queue.pop() {
            let position = Int(top & 0xFFFF_FFFF)
            let rank = top >> 32
            // Stale entries: the left symbol was absorbed, is now last, or the pair changed.
            guard symbols[position] >= 0, next[position] >= 0 else { continue }
            let right = Int(next[position])
            guard let merge = merges[Self.pairKey(symbols[position], symbols[right])], merge >> 32 == rank else { continue }
            symbols[position] = Int32(truncatingIfNeeded: merge & 0xFFFF_FFFF)
            symbols[right] = -1
            merged = true
            next[position] = next[right]
            if next[right] >= 0 { previous[Int(next[right])] = Int32(position) }
            if previous[position] >= 0 {
                let left = Int(previous[position])
                if let merge = merges[Self.pairKey(symbols[left], symbols[position])] {
                    queue.push(merge & 0xFFFF_FFFF_0000_0000 | UInt64(left))
                }
            }
            if next[position] >= 0 {
                if let merge = merges[Self.pairKey(symbols[position], symbols[Int(next[position])])] {
                    queue.push(merge & 0xFFFF_FFFF_0000_0000 | UInt64(position))
                }
            }
        }
        if merged { symbols.removeAll { $0 < 0 } }
    }
}

/// A binary min-heap of UInt64 keys (rank in the high half, position in the low half).
struct MinHeap {
    private var items: [UInt64] = []

    mutating func push(_ value: UInt64) {
        items.append(value)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child] < items[parent] else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> UInt64? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        let top = items[0]
        items[0] = last
        var parent = 0
        let count = items.count
        while true {
            let left = 2 * parent + 1
            guard left < count else { break }
            var smallest = left
            if left + 1 < count && items[left + 1] < items[left] { smallest = left + 1 }
            guard items[smallest] < items[parent] else { break }
            items.swapAt(smallest, parent)
            parent = smallest
        }
        return top
    }
}
