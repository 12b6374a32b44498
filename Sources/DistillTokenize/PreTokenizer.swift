/// One pre-token: a stretch of (normalized) text the model encodes on its own.
struct Piece {
    var text: [Unicode.Scalar]
    /// Whether the piece starts at the very start of the input, which Metaspace's `first`
    /// prepend scheme asks (the reference reads it from the piece's original offset).
    var atOrigin: Bool
}

/// How a split keeps the stretches a pattern matched (tokenizers' `SplitDelimiterBehavior`).
enum SplitBehavior: String, Sendable {
    case isolated = "Isolated"
    case removed = "Removed"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"
}

/// What a `Split` pre-tokenizer looks for.
enum SplitMatcher: Sendable {
    case pattern(SplitPattern)
    case literal([Unicode.Scalar])

    /// The text cut into matched and unmatched stretches that together cover it.
    func stretches(_ text: [Unicode.Scalar]) -> [(Range<Int>, Bool)] {
        let found: [Range<Int>]
        switch self {
        case .pattern(let pattern): found = pattern.matches(in: text[...])
        case .literal(let literal): found = literalMatches(literal, in: text)
        }
        return coverage(found, count: text.count)
    }
}

/// The non-overlapping occurrences of `literal` in `text`, left to right.
private func literalMatches(_ literal: [Unicode.Scalar], in text: [Unicode.Scalar]) -> [Range<Int>] {
    guard !literal.isEmpty else { return [] }
    var found: [Range<Int>] = []
    var i = 0
    while i + literal.count <= text.count {
        if text[i..<(i + literal.count)].elementsEqual(literal) {
            found.append(i..<(i + literal.count))
            i += literal.count
        } else {
            i += 1
        }
    }
    return found
}

/// Matched ranges completed with the unmatched gaps between them.
private func coverage(_ matches: [Range<Int>], count: Int) -> [(Range<Int>, Bool)] {
    var out: [(Range<Int>, Bool)] = []
    out.reserveCapacity(matches.count * 2 + 1)
    var previous = 0
    for m in matches {
        if previous < m.lowerBound { out.append((previous..<m.lowerBound, false)) }
        out.append((m, true))
        previous = m.upperBound
    }
    if previous < count { out.append((previous..<count, false)) }
    return out
}

/// Every scalar satisfying `test` as a match of its own, the rest as gaps.
private func scalarMatches(_ text: [Unicode.Scalar], _ test: (Unicode.Scalar) -> Bool) -> [(Range<Int>, Bool)] {
    var found: [Range<Int>] = []
    for (i, scalar) in text.enumerated() where test(scalar) { found.append(i..<(i + 1)) }
    return coverage(found, count: text.count)
}

/// Cuts a piece at the given stretches as `behavior` says, dropping empty results.
private func cut(_ piece: Piece, _ stretches: [(Range<Int>, Bool)], _ behavior: SplitBehavior, into out: inout [Piece]) {
    let kept: [(Range<Int>, remove: Bool)]
    switch behavior {
    case .isolated:
        kept = stretches.map { ($0.0, false) }
    case .removed:
        kept = stretches.map { ($0.0, $0.1) }
    case .contiguous:
        kept = merged(stretches) { isMatch, previous in isMatch == previous }
    case .mergedWithPrevious:
        kept = merged(stretches) { isMatch, previous in isMatch && !previous }
    case .mergedWithNext:
        kept = merged(stretches.reversed()) { isMatch, previous in isMatch && !previous }.reversed()
    }
    for (range, remove) in kept where !remove && !range.isEmpty {
        out.append(Piece(text: Array(piece.text[range]), atOrigin: piece.atOrigin && range.lowerBound == 0))
    }
}

/// Walks adjacent stretches in the order given, joining a stretch to the one kept before it
/// when `joins(itsIsMatch, previousIsMatch)`, and keeping it as a piece of its own otherwise.
/// Walked backwards, stretches join the one after them.
private func merged(
    _ stretches: some Sequence<(Range<Int>, Bool)>, joins: (Bool, Bool) -> Bool
) -> [(Range<Int>, remove: Bool)] {
    var kept: [(Range<Int>, remove: Bool)] = []
    var previous = false
    for (range, isMatch) in stretches {
        if joins(isMatch, previous), let last = kept.last {
            kept[kept.count - 1] = (min(last.0.lowerBound, range.lowerBound)..<max(last.0.upperBound, range.upperBound), false)
        } else {
            kept.append((range, false))
        }
        previous = isMatch
    }
    return kept
}

/// Metaspace's rule for prepending its replacement character.
enum PrependScheme: String, Sendable {
    case always, first, never
}

/// The pre-tokenizers of tokenizer.json that this tokenizer implements.
indirect enum PreTokenizer: Sendable {
    /// GPT-2's: optionally a leading space, the GPT-2 split pattern, then bytes spelled as
    /// characters.
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case split(SplitMatcher, SplitBehavior, invert: Bool)
    /// Digits cut out one by one (`individual`) or as runs.
    case digits(individual: Bool)
    /// SentencePiece's: spaces written as `replacement`, which may be prepended and may start
    /// each piece.
    case metaspace(replacement: Unicode.Scalar, prepend: PrependScheme, split: Bool)
    case sequence([PreTokenizer])

    static let supported = ["ByteLevel", "Digits", "Metaspace", "Sequence", "Split"]

    func apply(_ pieces: [Piece]) -> [Piece] {
        var out: [Piece] = []
        out.reserveCapacity(pieces.count)
        switch self {
        case .sequence(let steps):
            return steps.reduce(pieces) { $1.apply($0) }
        case .byteLevel(let addPrefixSpace, let useRegex):
            for var piece in pieces {
                if addPrefixSpace && piece.text.first != " " { piece.text.insert(" ", at: 0) }
                if useRegex {
                    var parts: [Piece] = []
                    cut(piece, SplitMatcher.pattern(.gpt2).stretches(piece.text), .isolated, into: &parts)
                    for part in parts { out.append(Piece(text: ByteLevel.spell(part.text), atOrigin: part.atOrigin)) }
                } else {
                    out.append(Piece(text: ByteLevel.spell(piece.text), atOrigin: piece.atOrigin))
                }
            }
        case .split(let matcher, let behavior, let invert):
            for piece in pieces {
                var stretches = matcher.stretches(piece.text)
                if invert { stretches = stretches.map { ($0.0, !$0.1) } }
                cut(piece, stretches, behavior, into: &out)
            }
        case .digits(let individual):
            for piece in pieces {
                cut(piece, scalarMatches(piece.text, ScalarClass.isNumeric), individual ? .isolated : .contiguous, into: &out)
            }
        case .metaspace(let replacement, let prepend, let split):
            for var piece in pieces {
                for i in piece.text.indices where piece.text[i] == " " { piece.text[i] = replacement }
                let prepends: Bool
                switch prepend {
                case .always: prepends = piece.text.first != replacement
                case .first: prepends = piece.text.first != replacement && piece.atOrigin
                case .never: prepends = false
                }
                if prepends { piece.text.insert(replacement, at: 0) }
                if split {
                    cut(piece, scalarMatches(piece.text) { $0 == replacement }, .mergedWithNext, into: &out)
                } else {
                    out.append(piece)
                }
            }
        }
        return out
    }

    /// Whether bytes are spelled as characters somewhere in this pre-tokenizer.
    var isByteLevel: Bool {
        switch self {
        case .byteLevel: return true
        case .sequence(let steps): return steps.contains { $0.isByteLevel }
        default: return false
        }
    }
}
