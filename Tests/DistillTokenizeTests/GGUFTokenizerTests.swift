import Testing

@testable import DistillTokenize

/// A llama (SentencePiece) vocabulary: <unk> <s> </s>, the 256 byte tokens, then pieces with
/// scores. The expected encodings below follow llama.cpp's SPM algorithm by hand: merge the
/// adjacent pair whose concatenation is the best-scoring token, leftmost among equals, repeat;
/// characters outside the vocabulary become their UTF-8 byte tokens.
func llamaData(pieces: [(String, Float)]) -> GGUFTokenizerData {
    let bytes = (0..<256).map { "<0x" + String($0, radix: 16, uppercase: true).leftPadded(to: 2) + ">" }
    var data = GGUFTokenizerData(model: "llama", tokens: ["<unk>", "<s>", "</s>"] + bytes + pieces.map(\.0))
    data.scores = [0, 0, 0] + Array(repeating: 0, count: 256) + pieces.map(\.1)
    data.tokenTypes = [2, 3, 3] + Array(repeating: 6, count: 256) + Array(repeating: 1, count: pieces.count)
    data.bos = 1
    data.eos = 2
    data.unknown = 0
    return data
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

@Suite("GGUF tokenizers")
struct GGUFTokenizerTests {
    static let base = 259  // ids of the pieces start after <unk> <s> </s> and the byte tokens

    @Test func llamaMergesByScoreNotByOrder() throws {
        // Pieces: ▁ a b c ab bc ▁a. "bc" scores above "ab", so "abc" is a + bc.
        let pieces: [(String, Float)] = [("▁", -1), ("a", -2), ("b", -3), ("c", -4), ("ab", -20), ("bc", -10), ("▁a", -30)]
        let tokenizer = try Tokenizer(gguf: llamaData(pieces: pieces))
        let id = { (piece: String) in Self.base + pieces.firstIndex { $0.0 == piece }! }
        // "▁abc": candidates ▁a (-30), ab (-20), bc (-10): bc first; then ▁a (-30) → ▁a bc.
        #expect(tokenizer.encode("abc", addSpecial: false) == [id("▁a"), id("bc")])
        #expect(tokenizer.encode("abc", addSpecial: true) == [1, id("▁a"), id("bc")])
        var swapped = pieces
        swapped[4].1 = -5  // now "ab" beats "bc" and "▁a": ▁ ab c
        let other = try Tokenizer(gguf: llamaData(pieces: swapped))
        #expect(other.encode("abc", addSpecial: false) == [id("▁"), id("ab"), id("c")])
        #expect(tokenizer.kind == .sentencePieceBPE && tokenizer.bos == 1 && tokenizer.eos == 2)
    }

    @Test func llamaFallsBackToBytesAndDecodesThem() throws {
        let pieces: [(String, Float)] = [("▁", -1), ("a", -2)]
        let tokenizer = try Tokenizer(gguf: llamaData(pieces: pieces))
        // "é" is not a piece: its UTF-8 bytes C3 A9 are tokens 3 + 0xC3 and 3 + 0xA9.
        let ids = tokenizer.encode("a\u{e9}", addSpecial: false)
        #expect(ids == [Self.base, Self.base + 1, 3 + 0xC3, 3 + 0xA9])
        #expect(tokenizer.decode(ids, skipSpecial: false) == "a\u{e9}")
        #expect(tokenizer.decode([1] + ids + [2], skipSpecial: true) == "a\u{e9}")
        #expect(tokenizer.encoding("</s>a", addSpecial: false).pieces == ["</s>", "a"])
    }

    @Test func unsupportedAndMalformedMetadataAreNamed() {
        func error(_ data: GGUFTokenizerData) -> TokenizerError? {
            do {
                _ = try Tokenizer(gguf: data)
                return nil
            } catch { return error as? TokenizerError }
        }
        let good = llamaData(pieces: [("a", -1)])
        var t5 = good
        t5.model = "t5"
        #expect(
            error(t5)
                == TokenizerError(.unsupported, path: "tokenizer.ggml.model", "unsupported tokenizer model \"t5\"; supported: gpt2, llama"))
        var noScores = good
        noScores.scores = nil
        #expect(error(noScores)?.path == "tokenizer.ggml.scores")
        var shortTypes = good
        shortTypes.tokenTypes = [1]
        #expect(error(shortTypes)?.path == "tokenizer.ggml.token_type")
        var badBos = good
        badBos.bos = 10_000
        #expect(error(badBos)?.path == "tokenizer.ggml.bos_token_id")

        var gpt2 = GGUFTokenizerData(model: "gpt2", tokens: ["a", "b", "ab"])
        gpt2.merges = ["a b"]
        gpt2.pre = "tekken-9"
        let pre = error(gpt2)
        #expect(pre?.kind == .unsupported && pre?.path == "tokenizer.ggml.pre")
        #expect(pre?.message.contains("llama-bpe") == true && pre?.message.contains("qwen2") == true)
        gpt2.pre = "qwen2"
        gpt2.merges = ["a c"]
        #expect(error(gpt2) == TokenizerError(.malformed, path: "tokenizer.ggml.merges[0]", "merge token \"c\" is not in the vocabulary"))
        gpt2.merges = nil
        #expect(error(gpt2)?.path == "tokenizer.ggml.merges")
    }

    @Test func gpt2ControlTokensAreSpecial() throws {
        var data = GGUFTokenizerData(model: "gpt2", tokens: ["<|end|>", "a", "b", "ab", "Ġ", "Ġab"])
        data.merges = ["a b", "Ġ ab"]
        data.tokenTypes = [3, 1, 1, 1, 1, 1]
        data.pre = "smollm"
        data.eos = 0
        let tokenizer = try Tokenizer(gguf: data)
        #expect(tokenizer.encode("ab ab<|end|>", addSpecial: true) == [3, 5, 0])
        #expect(tokenizer.decode([3, 5, 0], skipSpecial: true) == "ab ab")
        #expect(tokenizer.isSpecial(0) && !tokenizer.isSpecial(3))
        #expect(tokenizer.kind == .byteLevelBPE && tokenizer.vocabSize == 6)
    }
}
