/// Reading ARPA back-off models.
///
/// The format: a `\data\` header with one `ngram N=COUNT` line per order, then for
/// each order a `\N-grams:` section of exactly COUNT lines
/// `log10prob <TAB> w1 … wN [<TAB> log10backoff]`, then `\end\`. Fields may be
/// separated by tabs or spaces. Checked, each with the line it is on: the header
/// (orders 1, 2, 3… without gaps, integer counts), sections in order with the
/// announced number of entries, numeric fields (a probability is finite or −∞ and
/// at most 0; a back-off is finite), n-grams of the section's order made of
/// listed 1-grams, no duplicates, no back-off at the highest order (a 0 is
/// tolerated, as kenlm does), `<s>` and `</s>` present, the context of every
/// n-gram listed, nothing after `\end\`, and no end of file before it.
extension NGramModel {
    /// Reads an ARPA file.
    public static func read(path: String) throws -> NGramModel {
        do {
            return try ARPAParser.parse(.file(path))
        } catch let e as NGramError {
            throw e.at(path: path)
        }
    }

    /// Reads ARPA text already in memory.
    public init(arpa text: String) throws {
        self = try ARPAParser.parse(.bytes(Array(text.utf8)))
    }
}

/// The reader's state machine; it sees one line at a time.
private struct ARPAParser {
    enum Phase {
        /// Before `\data\`: only blank lines may come first.
        case preamble
        /// In the `\data\` header, reading `ngram N=COUNT` lines.
        case header
        /// Expecting the `\N-grams:` line of `order` (or `\end\` after the last).
        case sectionHeader(order: Int)
        /// Reading the entries of `order`; `seen` so far.
        case entries(order: Int, seen: Int)
        /// After `\end\`.
        case done
    }

    var phase = Phase.preamble
    var announced: [Int] = []
    var words: [String] = []
    var wordIDs: [String: WordID] = [:]
    var unigramLog10: [Double] = []
    var unigramBackoff: [Double] = []
    var unigramLines: [Int32] = []
    var tables: [OrderTable] = []
    var lines: [[Int32]] = []
    /// Scratch for one n-gram's ids.
    var key: [WordID] = []
    /// Scratch for one line's field ranges, reused so lines cost no allocation.
    var scratch: [Range<Int>] = []

    static func parse(_ source: LineSource) throws -> NGramModel {
        var parser = ARPAParser()
        let total = try source.forEachLine { line, number in try parser.consume(line, number) }
        return try parser.finish(lastLine: total)
    }

    mutating func consume(_ line: UnsafeBufferPointer<UInt8>, _ number: Int) throws {
        Self.fields(line, into: &scratch)
        let fields = scratch
        switch phase {
        case .preamble:
            if fields.isEmpty { return }
            guard fields.count == 1, Self.text(line, fields[0]) == "\\data\\" else {
                throw NGramError(.format, line: number, "expected \\data\\ (the first line of an ARPA file) but found \(Self.quote(line))")
            }
            phase = .header
        case .header:
            if fields.isEmpty { return }
            let first = Self.text(line, fields[0])
            if first.hasPrefix("\\") {
                guard !announced.isEmpty else {
                    throw NGramError(
                        .format, line: number, "the \\data\\ header lists no n-gram counts (expected lines like \"ngram 1=42\")")
                }
                try startSection(line, fields, number, expected: 1)
                return
            }
            try readCount(line, fields, number)
        case .sectionHeader(let order):
            if fields.isEmpty { return }
            let first = Self.text(line, fields[0])
            guard first.hasPrefix("\\") else {
                let previous = order - 1
                throw NGramError(
                    .format, line: number,
                    "the \(previous)-grams section has more entries than the \(announced[previous - 1]) the \\data\\ header announces")
            }
            if order > announced.count {
                guard fields.count == 1, first == "\\end\\" else {
                    throw NGramError(
                        .format, line: number,
                        "expected \\end\\ after the \(announced.count)-grams (the header announces no higher order) but found \(Self.quote(line))"
                    )
                }
                phase = .done
                return
            }
            try startSection(line, fields, number, expected: order)
        case .entries(let order, let seen):
            if fields.isEmpty { return }
            if line[fields[0].lowerBound] == UInt8(ascii: "\\") {
                throw NGramError(
                    .format, line: number,
                    "\(Self.quote(line)) comes after \(seen) \(order)-grams, but the \\data\\ header announces \(announced[order - 1])")
            }
            try readEntry(line, fields, number, order: order)
            let now = seen + 1
            phase = now == announced[order - 1] ? .sectionHeader(order: order + 1) : .entries(order: order, seen: now)
        case .done:
            if fields.isEmpty { return }
            throw NGramError(.format, line: number, "text after \\end\\: \(Self.quote(line))")
        }
    }

    mutating func readCount(_ line: UnsafeBufferPointer<UInt8>, _ fields: [Range<Int>], _ number: Int) throws {
        // "ngram N=COUNT", tolerating spaces around '='.
        var text = fields.map { Self.text(line, $0) }.joined(separator: " ")
        guard text.hasPrefix("ngram ") else {
            throw NGramError(.format, line: number, "expected \"ngram N=COUNT\" in the \\data\\ header but found \(Self.quote(line))")
        }
        text.removeFirst("ngram ".count)
        let parts = text.split(separator: "=", omittingEmptySubsequences: false).map { $0.trimmingSpaces }
        guard parts.count == 2, let n = Int(parts[0]) else {
            throw NGramError(.format, line: number, "expected \"ngram N=COUNT\" in the \\data\\ header but found \(Self.quote(line))")
        }
        guard n == announced.count + 1 else {
            throw NGramError(
                .format, line: number,
                "\"ngram \(n)=\" where \"ngram \(announced.count + 1)=\" was expected: orders must run 1, 2, 3, … without gaps")
        }
        guard let count = Int(parts[1]), count >= 0 else {
            throw NGramError(.format, line: number, "the \(n)-gram count \"\(parts[1])\" is not a non-negative integer")
        }
        if n == 1 && count == 0 { throw NGramError(.format, line: number, "the header announces no 1-grams") }
        announced.append(count)
    }

    mutating func startSection(_ line: UnsafeBufferPointer<UInt8>, _ fields: [Range<Int>], _ number: Int, expected: Int) throws {
        let text = Self.text(line, fields[0])
        guard fields.count == 1, text == "\\\(expected)-grams:" else {
            if expected > 1, text == "\\end\\" {
                throw NGramError(
                    .format, line: number,
                    "\\end\\ where \\\(expected)-grams: was expected: the header announces \(announced.count) orders")
            }
            throw NGramError(.format, line: number, "expected \\\(expected)-grams: but found \(Self.quote(line))")
        }
        let count = announced[expected - 1]
        // Presize for the announced count, but no further than 1M entries (the tables grow
        // past that): a header that lies about a huge count must fail on its missing
        // entries, not by claiming memory for them.
        let reserve = min(count, 1 << 20)
        if expected == 1 {
            words.reserveCapacity(reserve + 1)
            unigramLog10.reserveCapacity(reserve + 1)
            unigramBackoff.reserveCapacity(reserve + 1)
        } else {
            tables.append(OrderTable(order: expected, capacity: reserve, highest: expected == announced.count))
            lines.append([])
            lines[expected - 2].reserveCapacity(reserve)
        }
        key = [WordID](repeating: 0, count: expected)
        phase = count == 0 ? .sectionHeader(order: expected + 1) : .entries(order: expected, seen: 0)
    }

    /// An entry's fields, as indices into the line's fields: the probability, the
    /// words, and the back-off weight if any.
    struct Entry {
        var probability: Int
        var words: Range<Int>
        var backoff: Int?
    }

    /// Splits an entry. With tabs, as lmplz and SRILM write it
    /// (`prob <TAB> w1 … wN [<TAB> backoff]`), the tabs say which field is which, so a
    /// bad back-off weight is reported as one. With spaces only, a line of order + 1
    /// fields is a probability and words (a word may look like a number, "1999"), and
    /// one of order + 2 ends in a back-off weight when its last field is a number.
    static func split(_ line: UnsafeBufferPointer<UInt8>, _ fields: [Range<Int>], order: Int) -> Entry {
        var tabs = 0
        var firstTab = -1
        var secondTab = -1
        for i in 0..<(fields.count - 1) where line[fields[i].upperBound..<fields[i + 1].lowerBound].contains(0x09) {
            tabs += 1
            if tabs == 1 { firstTab = i } else if tabs == 2 { secondTab = i }
        }
        let last = fields.count - 1
        if firstTab == 0 && (tabs == 1 || (tabs == 2 && secondTab == last - 1)) {
            return Entry(probability: 0, words: 1..<(tabs == 2 ? last : last + 1), backoff: tabs == 2 ? last : nil)
        }
        if fields.count >= order + 2 && number(line, fields[last]) != nil {
            return Entry(probability: 0, words: 1..<last, backoff: last)
        }
        return Entry(probability: 0, words: 1..<(last + 1), backoff: nil)
    }

    mutating func readEntry(_ line: UnsafeBufferPointer<UInt8>, _ fields: [Range<Int>], _ number: Int, order: Int) throws {
        let highest = order == announced.count
        let entry = Self.split(line, fields, order: order)
        guard entry.words.count == order else {
            let shown = fields[entry.words].map { Self.text(line, $0) }.joined(separator: " ")
            throw NGramError(
                .format, line: number,
                "an n-gram of the wrong order in the \(order)-grams section: \(entry.words.count) word(s) \"\(shown)\" (expected a log10 probability, \(order) word(s) and an optional back-off weight)"
            )
        }
        let probText = Self.text(line, fields[entry.probability])
        guard let prob = Self.number(line, fields[entry.probability]), !prob.isNaN else {
            throw NGramError(.format, line: number, "the log10 probability \"\(probText)\" is not a number")
        }
        guard prob <= 0 else {
            throw NGramError(.format, line: number, "the log10 probability \(probText) is positive (a probability above 1)")
        }
        var backoff = noExtension
        if let index = entry.backoff {
            let field = fields[index]
            let text = Self.text(line, field)
            guard let b = Self.number(line, field), b.isFinite else {
                throw NGramError(.format, line: number, "the back-off weight \"\(text)\" is not a finite number")
            }
            if highest && b != 0 {
                throw NGramError(
                    .format, line: number, "a back-off weight (\(text)) on a \(order)-gram: the highest order has none")
            }
            backoff = b
        }
        let wordFields = fields[entry.words]
        if order == 1 {
            let word = try Self.word(line, wordFields.first!, number)
            if let first = wordIDs[word] {
                throw NGramError(
                    .format, line: number, "duplicate 1-gram \"\(word)\" (first on line \(unigramLines[Int(first)]))")
            }
            wordIDs[word] = WordID(words.count)
            words.append(word)
            unigramLog10.append(prob)
            unigramBackoff.append(highest ? noExtension : backoff)
            unigramLines.append(Int32(clamping: number))
            return
        }
        for i in 0..<order {
            let word = try Self.word(line, wordFields[wordFields.startIndex + i], number)
            guard let id = wordIDs[word] else {
                throw NGramError(
                    .format, line: number,
                    "\"\(word)\" in the \(order)-gram \(Self.words(line, wordFields)) is not a 1-gram of the model")
            }
            key[i] = id
        }
        let t = order - 2
        let (row, inserted) = tables[t].index.insert(key)
        guard inserted else {
            throw NGramError(
                .format, line: number,
                "duplicate \(order)-gram \(Self.words(line, wordFields)) (first on line \(lines[t][row]))")
        }
        tables[t].log10Prob.append(prob)
        if !highest { tables[t].backoff.append(backoff) }
        tables[t].listed += 1
        lines[t].append(Int32(clamping: number))
    }

    func finish(lastLine: Int) throws -> NGramModel {
        let end = "the file ends at line \(lastLine)"
        switch phase {
        case .preamble:
            if lastLine == 0 { throw NGramError(.format, "the file is empty: not an ARPA file") }
            throw NGramError(.format, line: lastLine, "\(end) without a \\data\\ header: not an ARPA file")
        case .header:
            throw NGramError(.format, line: lastLine, "\(end) inside the \\data\\ header (truncated?)")
        case .sectionHeader(let order):
            let what = order > announced.count ? "before \\end\\" : "before the \\\(order)-grams: section"
            throw NGramError(.format, line: lastLine, "\(end) \(what) (truncated?)")
        case .entries(let order, let seen):
            throw NGramError(
                .format, line: lastLine,
                "\(end) after \(seen) of the \(announced[order - 1]) \(order)-grams the header announces (truncated?)")
        case .done:
            break
        }
        for special in [NGramVocabulary.beginSentence, NGramVocabulary.endSentence] where wordIDs[special] == nil {
            throw NGramError(.format, "the model has no \(special) 1-gram (kenlm refuses such files too)")
        }
        var words = words
        var unigramLog10 = unigramLog10
        var unigramBackoff = unigramBackoff
        let missingUnknown = wordIDs[NGramVocabulary.unknown] == nil
        if missingUnknown {
            words.append(NGramVocabulary.unknown)
            unigramLog10.append(NGramModel.missingUnknownLog10)
            unigramBackoff.append(0)
        }
        return try NGramModel(
            vocabulary: NGramVocabulary(words: words), unigramLog10: unigramLog10, unigramBackoff: unigramBackoff,
            tables: tables, unknownWasAdded: missingUnknown, lines: [unigramLines] + lines)
    }

    // MARK: Fields

    /// Byte ranges of the fields of `line`, split at spaces, tabs, vertical tabs and
    /// form feeds, into `out` (emptied first).
    static func fields(_ line: UnsafeBufferPointer<UInt8>, into out: inout [Range<Int>]) {
        out.removeAll(keepingCapacity: true)
        var start = -1
        for i in 0..<line.count {
            let c = line[i]
            let space = c == 0x20 || c == 0x09 || c == 0x0B || c == 0x0C || c == 0x0D
            if space {
                if start >= 0 {
                    out.append(start..<i)
                    start = -1
                }
            } else if start < 0 {
                start = i
            }
        }
        if start >= 0 { out.append(start..<line.count) }
    }

    static func text(_ line: UnsafeBufferPointer<UInt8>, _ field: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: line[field]), as: UTF8.self)
    }

    /// Decimal (or `inf`, `-inf`) numbers, parsed by Swift without the C locale's help.
    static func number(_ line: UnsafeBufferPointer<UInt8>, _ field: Range<Int>) -> Double? {
        Double(text(line, field))
    }

    /// A word as a String, refusing bytes that are not UTF-8 (decoding would replace
    /// them, and two different byte strings could then become one word).
    static func word(_ line: UnsafeBufferPointer<UInt8>, _ field: Range<Int>, _ number: Int) throws -> String {
        let bytes = UnsafeBufferPointer(rebasing: line[field])
        let w = String(decoding: bytes, as: UTF8.self)
        guard w.utf8.elementsEqual(bytes) else {
            throw NGramError(.format, line: number, "a word that is not valid UTF-8: \(quote(line))")
        }
        return w
    }

    static func words(_ line: UnsafeBufferPointer<UInt8>, _ words: ArraySlice<Range<Int>>) -> String {
        "\"" + words.map { text(line, $0) }.joined(separator: " ") + "\""
    }

    /// The line as text, cut short, for messages.
    static func quote(_ line: UnsafeBufferPointer<UInt8>) -> String {
        let text = String(decoding: line.prefix(80), as: UTF8.self)
        return "\"" + text + (line.count > 80 ? "…" : "") + "\""
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}
