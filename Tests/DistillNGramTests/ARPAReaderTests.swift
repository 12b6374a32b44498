import Foundation
import Testing

@testable import DistillNGram

/// A trigram model small enough to check by hand. No `<unk>`: the reader adds it.
let smallARPA = """
    \\data\\
    ngram 1=6
    ngram 2=5
    ngram 3=2

    \\1-grams:
    -1.0\t<s>\t-0.5
    -0.9\t</s>
    -0.6\ta\t-0.3
    -0.7\tb\t-0.2
    -0.8\tc\t-0.1
    -1.2\t1999

    \\2-grams:
    -0.4\t<s> a\t-0.15
    -0.3\ta b\t-0.25
    -0.35\tb c
    -0.45\tc </s>
    -0.5\tb 1999

    \\3-grams:
    -0.2\t<s> a b
    -0.1\ta b c

    \\end\\

    """

@Suite("ARPA reading")
struct ARPAReaderTests {
    @Test func readsCountsVocabularyAndAddsTheMissingUnknownWord() throws {
        let m = try NGramModel(arpa: smallARPA)
        #expect(m.order == 3)
        #expect(m.counts == [7, 5, 2])
        #expect(m.vocabulary.words == ["<s>", "</s>", "a", "b", "c", "1999", "<unk>"])
        #expect(m.unknownWasAdded)
        #expect(m.vocabulary.id("zebra") == m.vocabulary.unknown)
        // An unknown word after <s>: kenlm's -100, plus the back-off of <s>.
        let s = m.fullScores(["zebra"], eos: false)
        #expect(s == [WordScore(log10Probability: -100 + -0.5, ngramLength: 1, isUnknown: true)])
    }

    @Test func spacesCRLFAndBlankLinesReadAsTabsDo() throws {
        let tabs = try NGramModel(arpa: smallARPA)
        let loose = smallARPA.replacingOccurrences(of: "\t", with: "  ").replacingOccurrences(of: "\n", with: "\r\n\r\n")
        let m = try NGramModel(arpa: loose)
        #expect(m.counts == tabs.counts)
        for sentence in ["a b c", "b 1999", "c c a zebra", ""] {
            #expect(m.fullScores(sentence: sentence) == tabs.fullScores(sentence: sentence))
        }
    }

    @Test func aWordThatLooksLikeANumberIsAWord() throws {
        // "-0.5 b 1999" (spaces) at the highest order: three fields, so a probability and two words.
        let text = smallARPA.replacingOccurrences(of: "\t", with: " ").replacingOccurrences(of: "ngram 3=2", with: "ngram 3=3")
            .replacingOccurrences(of: "-0.1 a b c", with: "-0.1 a b c\n-0.05 a b 1999")
        let m = try NGramModel(arpa: text)
        #expect(m.fullScores(["a", "b", "1999"], eos: false).last == WordScore(log10Probability: -0.05, ngramLength: 3, isUnknown: false))
    }

    @Test func writingAndReadingAgainGivesTheSameText() throws {
        let m = try NGramModel(arpa: smallARPA)
        let text = m.arpaText()
        let again = try NGramModel(arpa: text)
        #expect(again.arpaText() == text)
        #expect(again.fullScores(sentence: "a b c 1999 zebra") == m.fullScores(sentence: "a b c 1999 zebra"))
        // The added <unk> is written; 1-grams keep their back-off weights, the 3-grams have none.
        #expect(text.contains("-100.0\t<unk>\t0.0\n"))
        #expect(text.contains("-0.2\t<s> a b\n"))
    }

    @Test func aFileLargerThanOneReadChunkReadsAsTheSameText() throws {
        // 60,000 unigrams: about 1.3 MB, so lines cross the reader's 1 MiB chunks.
        var lines = ["\\data\\", "ngram 1=60003", "ngram 2=1", "", "\\1-grams:", "-1\t<s>\t-0.5", "-1\t</s>", "-3\t<unk>"]
        for i in 0..<60_000 { lines.append("-\(4 + Double(i % 97) / 100)\tword\(i)\t-0.\(i % 10)1") }
        lines += ["", "\\2-grams:", "-0.1\tword7 word8", "", "\\end\\"]
        let text = lines.joined(separator: "\n")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("distill-ngram-\(getpid()).arpa").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fromFile = try NGramModel.read(path: path)
        let fromText = try NGramModel(arpa: text)
        #expect(fromFile.counts == [60_003, 1])
        #expect(fromFile.arpaText() == fromText.arpaText())
        #expect(fromFile.score(sentence: "word59999 word7 word8") == fromText.score(sentence: "word59999 word7 word8"))
    }

    @Test func missingAndUnreadableFilesAreNamed() throws {
        let missing = "/nonexistent/distill/model.arpa"
        let e1 = #expect(throws: NGramError.self) { try NGramModel.read(path: missing) }
        #expect(e1?.kind == .file && e1?.path == missing && e1!.message.contains("no such file"))
        let e2 = #expect(throws: NGramError.self) { try NGramModel.read(path: "/tmp") }
        #expect(e2?.kind == .file && e2!.message.contains("not a regular file"))
    }

    /// A malformed variant of `smallARPA`: what changes, the line the error must name, and a phrase of it.
    struct Malformed: Sendable, CustomTestStringConvertible {
        let name: String
        let text: String
        let line: Int
        let phrase: String
        var testDescription: String { name }
    }

    static func replacing(_ old: String, _ new: String) -> String {
        precondition(smallARPA.contains(old))
        return smallARPA.replacingOccurrences(of: old, with: new)
    }

    /// 1-based line of the first line of `smallARPA` equal to `text`.
    static func line(_ text: String) -> Int {
        smallARPA.components(separatedBy: "\n").firstIndex(of: text)! + 1
    }

    static let malformed: [Malformed] = [
        Malformed(name: "no \\data\\", text: "junk\n" + smallARPA, line: 1, phrase: "expected \\data\\"),
        Malformed(
            name: "a bad count", text: replacing("ngram 2=5", "ngram 2=five"), line: line("ngram 2=5"),
            phrase: "\"five\" is not a non-negative integer"),
        Malformed(name: "a gap in the orders", text: replacing("ngram 2=5", "ngram 4=5"), line: line("ngram 2=5"), phrase: "without gaps"),
        Malformed(
            name: "fewer 2-grams than announced", text: replacing("ngram 2=5", "ngram 2=6"), line: line("\\3-grams:"),
            phrase: "comes after 5 2-grams, but the \\data\\ header announces 6"),
        Malformed(
            name: "more 2-grams than announced", text: replacing("ngram 2=5", "ngram 2=4"), line: line("-0.5\tb 1999"),
            phrase: "more entries than the 4"),
        Malformed(
            name: "a missing section", text: replacing("\\3-grams:\n-0.2\t<s> a b\n-0.1\ta b c\n\n", ""), line: line("\\3-grams:"),
            phrase: "\\end\\ where \\3-grams: was expected"),
        Malformed(
            name: "a non-numeric probability", text: replacing("-0.3\ta b\t-0.25", "x\ta b\t-0.25"), line: line("-0.3\ta b\t-0.25"),
            phrase: "log10 probability \"x\" is not a number"),
        Malformed(
            name: "a non-numeric back-off", text: replacing("-0.3\ta b\t-0.25", "-0.3\ta b\t-0.2x"), line: line("-0.3\ta b\t-0.25"),
            phrase: "back-off weight \"-0.2x\""),
        Malformed(
            name: "an infinite back-off", text: replacing("-0.3\ta b\t-0.25", "-0.3\ta b\t-inf"), line: line("-0.3\ta b\t-0.25"),
            phrase: "not a finite number"),
        Malformed(
            name: "a positive probability", text: replacing("-0.7\tb\t-0.2", "0.7\tb\t-0.2"), line: line("-0.7\tb\t-0.2"),
            phrase: "positive"),
        Malformed(
            name: "a 3-gram among the 2-grams", text: replacing("-0.35\tb c", "-0.35\ta b c"), line: line("-0.35\tb c"),
            phrase: "wrong order in the 2-grams section: 3 word(s) \"a b c\""),
        Malformed(
            name: "a 1-word line among the 2-grams", text: replacing("-0.35\tb c", "-0.35\tb"), line: line("-0.35\tb c"),
            phrase: "1 word(s)"),
        Malformed(
            name: "a duplicate 2-gram", text: replacing("-0.45\tc </s>", "-0.45\tb c"), line: line("-0.45\tc </s>"),
            phrase: "duplicate 2-gram \"b c\" (first on line \(line("-0.35\tb c")))"),
        Malformed(
            name: "a duplicate 1-gram", text: replacing("-1.2\t1999", "-1.2\ta"), line: line("-1.2\t1999"),
            phrase: "duplicate 1-gram \"a\" (first on line \(line("-0.6\ta\t-0.3")))"),
        Malformed(
            name: "a word that is no 1-gram", text: replacing("-0.5\tb 1999", "-0.5\tb 2000"), line: line("-0.5\tb 1999"),
            phrase: "\"2000\" in the 2-gram \"b 2000\" is not a 1-gram"),
        Malformed(
            name: "a back-off at the highest order", text: replacing("-0.1\ta b c", "-0.1\ta b c\t-0.3"), line: line("-0.1\ta b c"),
            phrase: "the highest order has none"),
        Malformed(
            name: "a truncated file", text: String(smallARPA.prefix(upTo: smallARPA.range(of: "-0.1\ta b c")!.lowerBound)),
            line: line("-0.2\t<s> a b"), phrase: "after 1 of the 2 3-grams"),
        Malformed(name: "no \\end\\", text: replacing("\\end\\\n", ""), line: line("\\end\\") - 1, phrase: "before \\end\\"),
        Malformed(name: "text after \\end\\", text: smallARPA + "more\n", line: line("\\end\\") + 1, phrase: "text after \\end\\"),
        Malformed(
            name: "a context that is no 2-gram", text: replacing("-0.1\ta b c", "-0.1\tc b c"), line: line("-0.1\ta b c"),
            phrase: "the context \"c b\" of the 3-gram \"c b c\" is not a 2-gram"),
        Malformed(
            name: "no <s>",
            text: replacing("-0.4\t<s> a\t-0.15", "-0.4\tc a\t-0.15").replacingOccurrences(of: "<s> a b", with: "c a b")
                .replacingOccurrences(of: "-1.0\t<s>\t-0.5", with: "-1.0\tzz\t-0.5"), line: 0, phrase: "no <s> 1-gram"),
        Malformed(name: "an empty file", text: "", line: 0, phrase: "the file is empty"),
        Malformed(
            name: "a header that promises 10^15 2-grams", text: replacing("ngram 2=5", "ngram 2=1000000000000000"),
            line: line("\\3-grams:"), phrase: "comes after 5 2-grams"),
    ]

    @Test(arguments: malformed)
    func malformedFilesNameTheLine(_ c: Malformed) throws {
        let error = #expect(throws: NGramError.self) { try NGramModel(arpa: c.text) }
        guard let error else { return }
        #expect(error.kind == .format)
        if c.line > 0 { #expect(error.line == c.line, "\(error)") }
        #expect(error.message.contains(c.phrase), "\(error)")
    }
}
