/// A token matched whole in the text before the model sees it (tokenizer.json `added_tokens`,
/// GGUF control and user-defined tokens).
struct AddedToken: Sendable {
    var id: Int
    var content: String
    var special: Bool
    /// Also swallows the whitespace before it.
    var lstrip = false
    /// Also swallows the whitespace after it.
    var rstrip = false
    /// Only matches when no word character touches it on either side.
    var singleWord = false
    /// Matched in the normalized text (in its normalized spelling) rather than the raw text.
    var normalized = false
}

/// One stretch of input after added tokens are cut out.
enum Segment {
    case text(Range<Int>)
    /// An added token: its id and its piece (the matched text, stripped whitespace included).
    case token(id: Int, piece: String)
}

/// Finds added tokens in text: at each position the longest token starting there, the leftmost
/// position first, matches not overlapping (the references' leftmost-longest Aho-Corasick), then
/// each match is checked against its token's `single_word` and widened by `lstrip`/`rstrip`.
struct AddedTokenMatcher: Sendable {
    private struct Node: Sendable {
        var children: [UInt32: Int32] = [:]
        /// Index into `tokens` of the token ending here, or -1.
        var token: Int32 = -1
    }

    private var nodes: [Node] = [Node()]
    private var tokens: [AddedToken] = []
    /// The first scalars of all patterns, to skip the trie quickly.
    private var firstScalars: Set<UInt32> = []

    var isEmpty: Bool { tokens.isEmpty }

    /// Adds a token under `pattern` (its content, or its normalized spelling).
    mutating func add(_ token: AddedToken, pattern: [Unicode.Scalar]) {
        guard !pattern.isEmpty else { return }
        var node = 0
        for scalar in pattern {
            if let child = nodes[node].children[scalar.value] {
                node = Int(child)
            } else {
                nodes.append(Node())
                nodes[node].children[scalar.value] = Int32(nodes.count - 1)
                node = nodes.count - 1
            }
        }
        // A later token with the same pattern replaces the earlier, as in a map.
        nodes[node].token = Int32(tokens.count)
        tokens.append(token)
        firstScalars.insert(pattern[0].value)
    }

    /// The longest pattern starting at `start`: (end, token index).
    private func longest(in text: [Unicode.Scalar], from start: Int, until end: Int) -> (Int, Int)? {
        var node = 0
        var best: (Int, Int)?
        var i = start
        while i < end, let child = nodes[node].children[text[i].value] {
            node = Int(child)
            i += 1
            if nodes[node].token >= 0 { best = (i, Int(nodes[node].token)) }
        }
        return best
    }

    /// Cuts `text[range]` into text stretches and added tokens.
    func segments(_ text: [Unicode.Scalar], _ range: Range<Int>) -> [Segment] {
        guard !tokens.isEmpty else { return [.text(range)] }
        var out: [Segment] = []
        var done = range.lowerBound
        var i = range.lowerBound
        while i < range.upperBound {
            guard firstScalars.contains(text[i].value), let (matchEnd, index) = longest(in: text, from: i, until: range.upperBound)
            else {
                i += 1
                continue
            }
            let token = tokens[index]
            var start = i
            var stop = matchEnd
            i = matchEnd
            if token.singleWord {
                let before = start > range.lowerBound && ScalarClass.isWordCharacter(text[start - 1])
                let after = stop < range.upperBound && ScalarClass.isWordCharacter(text[stop])
                if before || after { continue }
            }
            if token.lstrip {
                while start > done && ScalarClass.isWhitespace(text[start - 1]) { start -= 1 }
            }
            if token.rstrip {
                while stop < range.upperBound && ScalarClass.isWhitespace(text[stop]) { stop += 1 }
            }
            if done < start { out.append(.text(done..<start)) }
            var view = String.UnicodeScalarView()
            view.append(contentsOf: text[start..<stop])
            out.append(.token(id: token.id, piece: String(view)))
            done = stop
            i = max(i, stop)
        }
        if done < range.upperBound { out.append(.text(done..<range.upperBound)) }
        return out
    }
}
