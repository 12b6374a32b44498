/// A word's index in an n-gram model's vocabulary.
public typealias WordID = UInt32

/// The words an n-gram model knows, with the three it needs to know by name.
///
/// Words are compared as exact strings (no normalisation), as kenlm compares
/// bytes. Any word not listed maps to `<unk>`.
public struct NGramVocabulary: Sendable {
    public static let beginSentence = "<s>"
    public static let endSentence = "</s>"
    public static let unknown = "<unk>"

    /// Every word, by id.
    public let words: [String]
    private let ids: [String: WordID]
    /// `<s>`: context only; it starts every sentence and is never predicted.
    public let beginSentence: WordID
    /// `</s>`: predicted at the end of every sentence.
    public let endSentence: WordID
    /// `<unk>`: what every word outside the vocabulary becomes.
    public let unknown: WordID

    /// - Precondition: `words` are distinct and include `<s>`, `</s>` and `<unk>`
    ///   (the reader and the builder check this before they get here).
    init(words: [String]) {
        var ids = [String: WordID](minimumCapacity: words.count)
        for (i, w) in words.enumerated() { ids[w] = WordID(i) }
        precondition(ids.count == words.count, "duplicate words in an n-gram vocabulary")
        self.words = words
        self.ids = ids
        beginSentence = ids[Self.beginSentence]!
        endSentence = ids[Self.endSentence]!
        unknown = ids[Self.unknown]!
    }

    public var count: Int { words.count }

    /// The id of `word`, or `<unk>`'s when the model does not know it.
    public func id(_ word: String) -> WordID { ids[word] ?? unknown }

    /// The id of `word`, or nil when the model does not know it.
    public func lookup(_ word: String) -> WordID? { ids[word] }

    public subscript(id: WordID) -> String { words[Int(id)] }
}

/// Splits a sentence into words at Unicode white space, by scalar.
///
/// kenlm's Python `score` splits with `str.split()`. Splitting Swift `Character`s
/// would glue a combining mark that follows a space onto the space (one grapheme
/// cluster) and lose the word boundary; scalars keep it.
public func whitespaceTokens(_ sentence: String) -> [String] {
    var tokens: [String] = []
    var current = String.UnicodeScalarView()
    for scalar in sentence.unicodeScalars {
        if isSeparator(scalar) {
            if !current.isEmpty {
                tokens.append(String(current))
                current = String.UnicodeScalarView()
            }
        } else {
            current.append(scalar)
        }
    }
    if !current.isEmpty { tokens.append(String(current)) }
    return tokens
}

/// Python's `str.split()` separators: Unicode White_Space plus the four ASCII
/// information separators (U+001C–U+001F) that `str.isspace()` also accepts.
private func isSeparator(_ scalar: Unicode.Scalar) -> Bool {
    scalar.properties.isWhitespace || (0x1C...0x1F).contains(scalar.value)
}
