/// The pre-tokenizer split patterns of the GPT-2, Llama-3 and Qwen2 tokenizers, matched by hand
/// over Unicode scalars.
///
/// The references run these as backtracking regular expressions over code points. Swift's `Regex`
/// works on grapheme clusters by default, where "e" followed by a combining acute accent is one
/// character; the references see two code points, a letter and a mark, and make the mark its own
/// pre-token. So each pattern is written out here as the code its alternation amounts to:
/// alternatives are tried in order and the first that matches wins (not the longest), quantifiers
/// are greedy and give back only what a later part of the same alternative needs.
///
/// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
///
/// Llama-3 (Qwen2 is the same with `\p{N}` for `\p{N}{1,3}`):
/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
enum SplitPattern: Sendable, Equatable {
    case gpt2
    case llama3
    case qwen2

    static let gpt2Source = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Source =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Source =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// Names for error messages.
    static let supportedDescriptions = ["the GPT-2 pattern", "the Llama-3 pattern", "the Qwen2 pattern"]

    /// The pattern a `Split` pre-tokenizer's regex source spells, if it is one of these.
    init?(regexSource source: String) {
        switch source {
        case Self.gpt2Source: self = .gpt2
        case Self.llama3Source: self = .llama3
        case Self.qwen2Source: self = .qwen2
        default: return nil
        }
    }

    /// The ranges the pattern matches in `scalars`, left to right without overlap, as a regex
    /// engine's find-all returns them. (Every scalar is matched by one of the alternatives of
    /// these patterns, so the ranges tile the text.)
    func matches(in scalars: ArraySlice<Unicode.Scalar>) -> [Range<Int>] {
        let text = Array(scalars)
        let classes = ScalarClass.of(text)
        var result: [Range<Int>] = []
        result.reserveCapacity(text.count / 3 + 1)
        var i = 0
        let base = scalars.startIndex
        while i < text.count {
            let length: Int
            switch self {
            case .gpt2: length = Self.gpt2Match(text, classes, at: i)
            case .llama3: length = Self.llama3Match(text, classes, at: i, maxDigits: 3)
            case .qwen2: length = Self.llama3Match(text, classes, at: i, maxDigits: 1)
            }
            if length == 0 {
                i += 1  // unmatched: left to the caller as a gap
            } else {
                result.append((base + i)..<(base + i + length))
                i += length
            }
        }
        return result
    }

    // MARK: The alternatives

    private static let letter = ScalarClass.letter
    private static let number = ScalarClass.number
    private static let space = ScalarClass.whitespace
    private static let newline = ScalarClass.newline

    /// `[^\s\p{L}\p{N}]`: neither whitespace, letter nor number.
    @inline(__always)
    private static func isOther(_ c: UInt8) -> Bool { c & (letter | number | space) == 0 }

    /// The length of the run from `i` whose classes satisfy `test`.
    @inline(__always)
    private static func run(_ classes: [UInt8], from i: Int, _ test: (UInt8) -> Bool) -> Int {
        var j = i
        while j < classes.count && test(classes[j]) { j += 1 }
        return j - i
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d`, case-sensitive or not (`(?i:...)`, where the long s "ſ" folds
    /// to "s").
    private static func contraction(_ text: [Unicode.Scalar], at i: Int, ignoringCase: Bool) -> Int {
        guard text[i] == "'", i + 1 < text.count else { return 0 }
        func letter(_ k: Int, _ lower: Unicode.Scalar) -> Bool {
            guard k < text.count else { return false }
            let c = text[k]
            if c == lower { return true }
            guard ignoringCase else { return false }
            if c.value == lower.value - 32 { return true }
            return lower == "s" && c == "\u{17F}"
        }
        if letter(i + 1, "s") || letter(i + 1, "t") { return 2 }
        if letter(i + 1, "r") && letter(i + 2, "e") { return 3 }
        if letter(i + 1, "v") && letter(i + 2, "e") { return 3 }
        if letter(i + 1, "m") { return 2 }
        if letter(i + 1, "l") && letter(i + 2, "l") { return 3 }
        if letter(i + 1, "d") { return 2 }
        return 0
    }

    /// `\s+(?!\S)|\s+` at a whitespace scalar: the run, less its last scalar when a
    /// non-whitespace scalar follows it and the run is longer than one.
    @inline(__always)
    private static func whitespaceRun(_ classes: [UInt8], at i: Int) -> Int {
        let n = run(classes, from: i) { $0 & space != 0 }
        if i + n == classes.count || n == 1 { return n }
        return n - 1
    }

    private static func gpt2Match(_ text: [Unicode.Scalar], _ classes: [UInt8], at i: Int) -> Int {
        let c = classes[i]
        if text[i] == "'" {
            let n = contraction(text, at: i, ignoringCase: false)
            if n > 0 { return n }
        }
        // ` ?X+` for X in letters, numbers, other: the optional space only when X follows it.
        let spaced = text[i] == " " && i + 1 < text.count ? 1 : 0
        let head = classes[i + spaced]
        if spaced == 0 || head & (letter | number) != 0 || isOther(head) {
            if head & letter != 0 { return spaced + run(classes, from: i + spaced) { $0 & letter != 0 } }
            if head & number != 0 { return spaced + run(classes, from: i + spaced) { $0 & number != 0 } }
            if isOther(head) { return spaced + run(classes, from: i + spaced) { isOther($0) } }
        }
        if c & space != 0 { return whitespaceRun(classes, at: i) }
        return 0
    }

    private static func llama3Match(_ text: [Unicode.Scalar], _ classes: [UInt8], at i: Int, maxDigits: Int) -> Int {
        let c = classes[i]
        let count = text.count
        if text[i] == "'" {
            let n = contraction(text, at: i, ignoringCase: true)
            if n > 0 { return n }
        }
        // `[^\r\n\p{L}\p{N}]?\p{L}+`
        if c & (newline | letter | number) == 0 && i + 1 < count && classes[i + 1] & letter != 0 {
            return 1 + run(classes, from: i + 1) { $0 & letter != 0 }
        }
        if c & letter != 0 { return run(classes, from: i) { $0 & letter != 0 } }
        // `\p{N}{1,3}`
        if c & number != 0 { return min(maxDigits, run(classes, from: i) { $0 & number != 0 }) }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        var start = i
        if text[i] == " " && i + 1 < count && isOther(classes[i + 1]) { start = i + 1 }
        if isOther(classes[start]) {
            let end = start + run(classes, from: start) { isOther($0) }
            return end - i + run(classes, from: end) { $0 & newline != 0 }
        }
        guard c & space != 0 else { return 0 }
        // `\s*[\r\n]+`: the whitespace run up to and including its last line break.
        let n = run(classes, from: i) { $0 & space != 0 }
        var k = i + n - 1
        while k >= i && classes[k] & newline == 0 { k -= 1 }
        if k >= i { return k - i + 1 }
        // `\s+(?!\S)|\s+`
        return whitespaceRun(classes, at: i)
    }
}
