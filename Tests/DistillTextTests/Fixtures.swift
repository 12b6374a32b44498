import DistillTestSupport

@testable import DistillText

enum Fixtures {
    static let letters = Array("abcdefghijklmnopqrstuvwxyz")

    static func word(_ rng: inout Rng) -> String {
        String((0..<(3 + rng.int(6))).map { _ in letters[rng.int(letters.count)] })
    }

    static func sentence(_ rng: inout Rng, words: Int) -> String {
        var w = (0..<words).map { _ in word(&rng) }
        w[0] = w[0].prefix(1).uppercased() + w[0].dropFirst()
        return w.joined(separator: " ") + "."
    }

    /// Pairs whose simplified input (a ~20-word question) is the tail of the full
    /// context (~60 words of context before it).
    static func pairs(_ count: Int, seed: UInt64 = 42, contextWords: Int = 60, questionWords: Int = 20) -> [TextPair] {
        var rng = Rng(seed)
        return (0..<count).map { i in
            let context = sentence(&rng, words: contextWords)
            let question = sentence(&rng, words: questionWords)
            return TextPair(id: "ex-\(i)", full: "Context: \(context)\nQuestion: \(question)", simplified: "Question: \(question)")
        }
    }

    /// Replaces `count` distinct words (not the first) with fresh random words.
    static func changeWords(_ text: String, count: Int, rng: inout Rng) -> String {
        var words = text.split(separator: " ").map(String.init)
        var positions = Set<Int>()
        while positions.count < count { positions.insert(1 + rng.int(words.count - 2)) }
        for p in positions.sorted() { words[p] = word(&rng) }
        return words.joined(separator: " ")
    }

    /// Same text with case, whitespace and edge punctuation changed only.
    static func cosmetic(_ text: String) -> String {
        "  \"" + text.uppercased().replacingOccurrences(" ", "\t \n ") + "!!\"  "
    }
}

extension String {
    /// Replaces every occurrence of `a` (non-empty) with `b`.
    func replacingOccurrences(_ a: String, _ b: String) -> String {
        var out = ""
        var rest = Substring(self)
        while let r = rest.firstRange(of: a) {
            out += rest[..<r.lowerBound] + b
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}
