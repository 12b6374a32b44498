import Foundation

/// Options for ``normalizeText(_:options:)``.
public struct NormalizationOptions: Sendable, Equatable, Hashable {
    /// Remove punctuation characters (and any whitespace uncovered by removing them)
    /// from the start and the end of the whole text. Punctuation inside the text is kept.
    public var stripEdgePunctuation: Bool

    public init(stripEdgePunctuation: Bool = true) {
        self.stripEdgePunctuation = stripEdgePunctuation
    }

    /// The options used by ``classifyInputs(pairs:inputs:nearThreshold:)`` and ``checkPairs(_:)``.
    public static let matching = NormalizationOptions(stripEdgePunctuation: true)
    /// Case folding and whitespace only; punctuation is kept everywhere.
    public static let keepPunctuation = NormalizationOptions(stripEdgePunctuation: false)
}

/// Normalises a text for matching. The exact rule, applied in this order:
///
/// 1. Unicode canonical composition (NFC): "e" + U+0301 becomes "é". ASCII-only
///    text is already NFC and skips this step.
/// 2. `lowercased()` (Unicode default case mapping, locale independent).
/// 3. Every maximal run of Unicode `White_Space` scalars (spaces, tabs, newlines,
///    no-break spaces, ideographic space, …) becomes one U+0020 SPACE.
/// 4. Leading and trailing spaces are removed.
/// 5. If `options.stripEdgePunctuation` (the default): scalars whose general
///    category is punctuation (Pc, Pd, Ps, Pe, Pi, Pf, Po) are removed from both
///    ends of the text, together with any space this uncovers, repeatedly until
///    the first and last scalars are neither punctuation nor space. Symbols
///    (`$`, `+`, emoji, …) and everything inside the text are kept.
///
/// Normalising twice gives the same result as normalising once.
public func normalizeText(_ text: String, options: NormalizationOptions = .matching) -> String {
    String(String.UnicodeScalarView(normalizedScalars(text, options: options)))
}

/// Whether a scalar is Unicode punctuation (general category P*).
@inline(__always)
func isPunctuationScalar(_ s: Unicode.Scalar) -> Bool {
    if s.value < 0x80 {
        // ASCII fast path: !"#%&'()*,-./:;?@[\]_{}  (the P* ones; $+<=>^`|~ are symbols)
        switch s.value {
        case 0x21, 0x22, 0x23, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x2C, 0x2D, 0x2E, 0x2F,
            0x3A, 0x3B, 0x3F, 0x40, 0x5B, 0x5C, 0x5D, 0x5F, 0x7B, 0x7D:
            return true
        default:
            return false
        }
    }
    switch s.properties.generalCategory {
    case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
        .initialPunctuation, .finalPunctuation, .otherPunctuation:
        return true
    default:
        return false
    }
}

@inline(__always)
func isWhitespaceScalar(_ s: Unicode.Scalar) -> Bool {
    if s.value < 0x80 {
        return s.value == 0x20 || (s.value >= 0x09 && s.value <= 0x0D)
    }
    return s.properties.isWhitespace
}

/// The normalised text as an array of Unicode scalars (see ``normalizeText(_:options:)``).
func normalizedScalars(_ text: String, options: NormalizationOptions) -> [Unicode.Scalar] {
    var isASCII = true
    for b in text.utf8 where b >= 0x80 { isASCII = false; break }
    let composed = isASCII ? text : text.precomposedStringWithCanonicalMapping
    let lowered = composed.lowercased()

    var out: [Unicode.Scalar] = []
    out.reserveCapacity(lowered.utf8.count)
    var pendingSpace = false
    for s in lowered.unicodeScalars {
        if isWhitespaceScalar(s) {
            pendingSpace = true
        } else {
            if pendingSpace && !out.isEmpty { out.append(" ") }
            pendingSpace = false
            out.append(s)
        }
    }
    guard options.stripEdgePunctuation, !out.isEmpty else { return out }

    var lo = 0
    var hi = out.count
    while lo < hi, out[lo] == " " || isPunctuationScalar(out[lo]) { lo += 1 }
    while hi > lo, out[hi - 1] == " " || isPunctuationScalar(out[hi - 1]) { hi -= 1 }
    if lo == 0 && hi == out.count { return out }
    return Array(out[lo..<hi])
}

/// Splits a text into word tokens: the text is normalised (``normalizeText(_:options:)``
/// with `.keepPunctuation`), split at spaces, punctuation is stripped from both
/// ends of each piece, and empty pieces are dropped. "Hello, World!" → ["hello", "world"].
public func wordTokens(_ text: String) -> [String] {
    let scalars = normalizedScalars(text, options: .keepPunctuation)
    var tokens: [String] = []
    var start = 0
    func flush(_ end: Int) {
        var lo = start, hi = end
        while lo < hi, isPunctuationScalar(scalars[lo]) { lo += 1 }
        while hi > lo, isPunctuationScalar(scalars[hi - 1]) { hi -= 1 }
        if lo < hi {
            tokens.append(String(String.UnicodeScalarView(scalars[lo..<hi])))
        }
    }
    for (i, s) in scalars.enumerated() where s == " " {
        flush(i)
        start = i + 1
    }
    flush(scalars.count)
    return tokens
}
