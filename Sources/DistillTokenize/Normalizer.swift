/// The normalizers of tokenizer.json that this tokenizer implements: each rewrites one stretch of
/// text between added tokens.
indirect enum Normalizer: Sendable {
    case nfc, nfd, nfkc, nfkd
    /// Prepends a string to any non-empty text (SentencePiece's "▁" at the start of a text).
    case prepend([Unicode.Scalar])
    /// Replaces every occurrence of a literal string, left to right.
    case replace(pattern: [Unicode.Scalar], content: [Unicode.Scalar])
    /// Strips leading and/or trailing whitespace.
    case strip(left: Bool, right: Bool)
    case sequence([Normalizer])

    static let supported = ["NFC", "NFD", "NFKC", "NFKD", "Prepend", "Replace", "Sequence", "Strip"]

    func apply(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        switch self {
        case .nfc: return Self.ascii(text) ? text : UnicodeNormalization.compose(UnicodeNormalization.decompose(text, compatibility: false))
        case .nfd: return Self.ascii(text) ? text : UnicodeNormalization.decompose(text, compatibility: false)
        case .nfkc: return Self.ascii(text) ? text : UnicodeNormalization.compose(UnicodeNormalization.decompose(text, compatibility: true))
        case .nfkd: return Self.ascii(text) ? text : UnicodeNormalization.decompose(text, compatibility: true)
        case .prepend(let prefix):
            return text.isEmpty ? text : prefix + text
        case .replace(let pattern, let content):
            return replacingOccurrences(of: pattern, with: content, in: text)
        case .strip(let left, let right):
            var start = 0
            var end = text.count
            if left { while start < end && ScalarClass.isWhitespace(text[start]) { start += 1 } }
            if right { while end > start && ScalarClass.isWhitespace(text[end - 1]) { end -= 1 } }
            return Array(text[start..<end])
        case .sequence(let steps):
            return steps.reduce(text) { $1.apply($0) }
        }
    }

    /// Pure ASCII is in every normalization form already.
    private static func ascii(_ text: [Unicode.Scalar]) -> Bool { text.allSatisfy { $0.isASCII } }
}

/// `text` with every non-overlapping occurrence of `pattern` (found left to right) replaced.
func replacingOccurrences(
    of pattern: [Unicode.Scalar], with content: [Unicode.Scalar], in text: [Unicode.Scalar]
) -> [Unicode.Scalar] {
    guard !pattern.isEmpty, text.count >= pattern.count else { return text }
    var out: [Unicode.Scalar] = []
    out.reserveCapacity(text.count)
    var i = 0
    let first = pattern[0]
    while i < text.count {
        if text[i] == first && i + pattern.count <= text.count && text[i..<(i + pattern.count)].elementsEqual(pattern) {
            out.append(contentsOf: content)
            i += pattern.count
        } else {
            out.append(text[i])
            i += 1
        }
    }
    return out
}
