/// The decoders of tokenizer.json that this tokenizer implements. Each maps the list of token
/// strings to a new list (tokenizers' `decode_chain`); the text is the final list joined.
indirect enum Decoder: Sendable {
    /// Byte spellings back to bytes, the whole list read as UTF-8 with U+FFFD for invalid bytes.
    case byteLevel
    /// Runs of `<0xNN>` tokens back to the text their bytes spell (one U+FFFD per byte when they
    /// are not valid UTF-8).
    case byteFallback
    /// All tokens joined into one.
    case fuse
    /// Up to `start` leading and `stop` trailing `content` scalars removed from each token.
    case strip(content: Unicode.Scalar, start: Int, stop: Int)
    /// A literal replaced in each token.
    case replace(pattern: [Unicode.Scalar], content: [Unicode.Scalar])
    /// The Metaspace replacement back to spaces, dropping the prepended one of the first token.
    case metaspace(replacement: Unicode.Scalar, prepend: PrependScheme)
    case sequence([Decoder])

    static let supported = ["ByteFallback", "ByteLevel", "Fuse", "Metaspace", "Replace", "Sequence", "Strip"]

    func decodeChain(_ tokens: [String]) -> [String] {
        switch self {
        case .sequence(let steps):
            return steps.reduce(tokens) { $1.decodeChain($0) }
        case .byteLevel:
            var bytes: [UInt8] = []
            for token in tokens {
                let start = bytes.count
                var spelled = true
                for scalar in token.unicodeScalars {
                    guard let byte = ByteLevel.byte(for: scalar) else {
                        spelled = false
                        break
                    }
                    bytes.append(byte)
                }
                // A token not written in the byte alphabet (an added token) stands for its own UTF-8.
                if !spelled {
                    bytes.removeSubrange(start...)
                    bytes.append(contentsOf: token.utf8)
                }
            }
            return [String(decoding: bytes, as: UTF8.self)]
        case .byteFallback:
            var out: [String] = []
            var pending: [UInt8] = []
            func flush() {
                guard !pending.isEmpty else { return }
                if let text = String(validating: pending, as: UTF8.self) {
                    out.append(text)
                } else {
                    out.append(contentsOf: repeatElement("\u{FFFD}", count: pending.count))
                }
                pending.removeAll()
            }
            for token in tokens {
                if let byte = Self.fallbackByte(token) {
                    pending.append(byte)
                } else {
                    flush()
                    out.append(token)
                }
            }
            flush()
            return out
        case .fuse:
            return [tokens.joined()]
        case .strip(let content, let start, let stop):
            return tokens.map { token in
                let scalars = Array(token.unicodeScalars)
                var from = 0
                while from < min(start, scalars.count) && scalars[from] == content { from += 1 }
                var to = scalars.count
                var removed = 0
                while removed < stop && to > from && scalars[to - 1] == content {
                    to -= 1
                    removed += 1
                }
                var view = String.UnicodeScalarView()
                view.append(contentsOf: scalars[from..<to])
                return String(view)
            }
        case .replace(let pattern, let content):
            return tokens.map { token in
                var view = String.UnicodeScalarView()
                view.append(contentsOf: replacingOccurrences(of: pattern, with: content, in: Array(token.unicodeScalars)))
                return String(view)
            }
        case .metaspace(let replacement, let prepend):
            return tokens.enumerated().map { index, token in
                var view = String.UnicodeScalarView()
                for scalar in token.unicodeScalars {
                    if scalar == replacement {
                        if index == 0 && prepend != .never { continue }
                        view.append(" ")
                    } else {
                        view.append(scalar)
                    }
                }
                return String(view)
            }
        }
    }

    /// The byte a `<0xNN>` token stands for. Like the reference (Rust's `u8::from_str_radix`),
    /// hex digits of either case and a leading "+" are accepted.
    static func fallbackByte(_ token: String) -> UInt8? {
        let utf8 = Array(token.utf8)
        guard utf8.count == 6, utf8[0] == UInt8(ascii: "<"), utf8[1] == UInt8(ascii: "0"), utf8[2] == UInt8(ascii: "x"),
            utf8[5] == UInt8(ascii: ">")
        else { return nil }
        guard utf8[3] != UInt8(ascii: "-") else { return nil }
        return UInt8(String(decoding: utf8[3..<5], as: UTF8.self), radix: 16)
    }
}
