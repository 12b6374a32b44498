import Testing

@testable import DistillTokenize

/// The split patterns against what the `tokenizers` package's `Split(Regex(pattern), "isolated")`
/// returned for the same texts (pre_tokenize_str, tokenizers 0.23.3). The Python tests compare
/// whole tokenizers on many more texts; these pin the cases that grapheme-based matching gets wrong.
@Suite("Split patterns")
struct SplitPatternTests {
    func split(_ pattern: SplitPattern, _ text: String) -> [String] {
        let scalars = Array(text.unicodeScalars)
        return pattern.matches(in: scalars[...]).map { String(String.UnicodeScalarView(scalars[$0])) }
    }

    @Test func combiningAccentIsItsOwnPreTokenInGPT2() {
        // "e" + U+0301 is one Character to Swift; to the reference it is a letter and a mark.
        #expect(
            split(.gpt2, "e\u{301} cafe\u{301} it's 'S  x\t\ty  \n z 1  2") == [
                "e", "\u{301}", " cafe", "\u{301}", " it", "'s", " '", "S", " ", " x", "\t", "\t", "y", "  \n", " z", " 1", " ", " 2",
            ])
        #expect(
            split(.gpt2, "Hello world!! 3.14 \u{e9}t\u{e9} e\u{301}te\u{301}") == [
                "Hello", " world", "!!", " 3", ".", "14", " \u{e9}t\u{e9}", " e", "\u{301}", "te", "\u{301}",
            ])
    }

    @Test func llama3ContractionsIgnoreCaseAndDigitsComeInThrees() {
        #expect(
            split(.llama3, "IT'S it'\u{17F} x'S 'RE 12345 \u{a0}a  \r\n\n b\u{2028}c\u{85}d") == [
                "IT", "'S", " it", "'\u{17F}", " x", "'S", " '", "RE", " ", "123", "45", " ", "\u{a0}a", "  \r\n\n", " b",
                "\u{2028}c", "\u{85}d",
            ])
    }

    @Test func llama3MarkPrefixesTheFollowingLetters() {
        #expect(
            split(.llama3, "e\u{301}x cafe\u{301} .\n\n!!\r\n  ok") == [
                "e", "\u{301}x", " cafe", "\u{301}", " .\n\n", "!!\r\n", " ", " ok",
            ])
    }

    @Test func qwen2SplitsDigitsOneByOne() {
        #expect(split(.qwen2, "12345 ab1c  \n\n x") == ["1", "2", "3", "4", "5", " ab", "1", "c", "  \n\n", " x"])
        #expect(split(.qwen2, "caf\u{e9} cafe\u{301}!") == ["caf\u{e9}", " cafe", "\u{301}!"])
    }

    @Test func patternsAreRecognisedOnlyAsTheReferenceSpellsThem() {
        #expect(SplitPattern(regexSource: SplitPattern.gpt2Source) == .gpt2)
        #expect(SplitPattern(regexSource: SplitPattern.llama3Source) == .llama3)
        #expect(SplitPattern(regexSource: SplitPattern.qwen2Source) == .qwen2)
        #expect(SplitPattern(regexSource: "\\w+|[^\\w\\s]+") == nil)
    }

    @Test func scalarsNewerThanTheReferenceUnicodeAreNotLetters() {
        // U+1C89 (Unicode 16.0) is a letter to the reference; U+A7CE (Unicode 17.0) is not assigned there.
        #expect(ScalarClass.of(Unicode.Scalar(0x1C89)!) == ScalarClass.letter)
        #expect(ScalarClass.of(Unicode.Scalar(0xA7CE)!) == 0)
        #expect(split(.gpt2, "a\u{A7CE}b") == ["a", "\u{A7CE}", "b"])
    }
}
