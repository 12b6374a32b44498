import DistillJSON
import Foundation
import Testing

@testable import DistillTokenize

/// A small byte-level tokenizer.json with `replacements` spliced into its top-level members.
func tokenizerJSON(_ replacements: [String: String] = [:]) -> String {
    var members: [(String, String)] = [
        ("version", "\"1.0\""),
        ("added_tokens", #"[{"id": 6, "content": "<s>", "special": true, "normalized": false}]"#),
        ("normalizer", "null"),
        ("pre_tokenizer", #"{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}"#),
        ("post_processor", "null"),
        ("decoder", #"{"type": "ByteLevel"}"#),
        (
            "model",
            #"{"type": "BPE", "dropout": null, "unk_token": null, "vocab": {"a": 0, "b": 1, "Ġ": 2, "ab": 3, "Ġab": 4, "abab": 5, "<s>": 6}, "merges": ["a b", ["Ġ", "ab"], "ab ab"]}"#
        ),
    ]
    for (key, value) in replacements {
        if let index = members.firstIndex(where: { $0.0 == key }) {
            members[index].1 = value
        } else {
            members.append((key, value))
        }
    }
    return "{" + members.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
}

func load(_ text: String) throws -> Tokenizer {
    try Tokenizer(tokenizerJSON: JSON.parse(text))
}

/// The error loading `text` throws (nil when it loads).
func loadError(_ text: String) -> TokenizerError? {
    do {
        _ = try load(text)
        return nil
    } catch let error as TokenizerError {
        return error
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

@Suite("tokenizer.json")
struct TokenizerJSONTests {
    @Test func bothMergeEncodingsLoadAndMerge() throws {
        let tokenizer = try load(tokenizerJSON())
        // "abab ab": "abab" merges a+b twice then ab+ab; " ab" is Ġ+a+b → Ġ ab → Ġab.
        #expect(tokenizer.encode("abab ab", addSpecial: false) == [5, 4])
        #expect(tokenizer.encoding("abab ab", addSpecial: false).pieces == ["abab", "Ġab"])
        #expect(tokenizer.decode([5, 4], skipSpecial: false) == "abab ab")
        #expect(tokenizer.kind == .byteLevelBPE)
        #expect(tokenizer.vocabSize == 7)
        #expect(tokenizer.piece(4) == "Ġab" && tokenizer.id("Ġab") == 4 && tokenizer.id("<s>") == 6)
    }

    @Test func specialTokensAreSplitOutBeforeTheModel() throws {
        let tokenizer = try load(tokenizerJSON())
        #expect(tokenizer.encode("ab<s>ab", addSpecial: false) == [3, 6, 3])
        #expect(tokenizer.decode([3, 6, 3], skipSpecial: true) == "abab")
        #expect(tokenizer.decode([3, 6, 3, 99], skipSpecial: false) == "ab<s>ab")
    }

    @Test func canonicallyEquivalentTokensKeepTheirOwnIds() throws {
        // Swift's String == says "é" == "e\u{301}"; a vocabulary must not.
        let json = tokenizerJSON([
            "pre_tokenizer": "null", "decoder": "null", "added_tokens": "[]",
            "model": #"{"type": "BPE", "vocab": {"e": 0, "\u0301": 1, "\u00e9": 2, "e\u0301": 3}, "merges": [["e", "\u0301"]]}"#,
        ])
        let tokenizer = try load(json)
        #expect(tokenizer.encode("\u{e9}", addSpecial: false) == [2])
        #expect(tokenizer.encode("e\u{301}", addSpecial: false) == [3])
        #expect(tokenizer.id("e\u{301}") == 3 && tokenizer.id("\u{e9}") == 2)
    }

    @Test func mergeLoopHandlesLongWords() throws {
        // 20 000 "a": first every "a a" pair (rank 0) left to right, then "aa aa" (rank 1).
        let json = tokenizerJSON([
            "pre_tokenizer": "null", "decoder": "null", "added_tokens": "[]",
            "model": #"{"type": "BPE", "vocab": {"a": 0, "aa": 1, "aaaa": 2}, "merges": ["a a", "aa aa"]}"#,
        ])
        let tokenizer = try load(json)
        #expect(tokenizer.encode(String(repeating: "a", count: 20_000), addSpecial: false) == Array(repeating: 2, count: 5_000))
        #expect(tokenizer.encode(String(repeating: "a", count: 7), addSpecial: false) == [2, 1, 0])
    }

    // MARK: Errors name what is wrong and where

    @Test func unsupportedModelIsNamedWithTheSupportedOnes() {
        let error = loadError(tokenizerJSON(["model": #"{"type": "WordPiece", "vocab": {}}"#]))
        #expect(error?.kind == .unsupported)
        #expect(error?.path == "model.type")
        #expect(error?.message == "unsupported model type \"WordPiece\"; supported: BPE")
    }

    @Test func unsupportedPreTokenizerInASequenceGivesItsPath() {
        let error = loadError(
            tokenizerJSON(["pre_tokenizer": #"{"type": "Sequence", "pretokenizers": [{"type": "ByteLevel"}, {"type": "Whitespace"}]}"#]))
        #expect(error?.kind == .unsupported)
        #expect(error?.path == "pre_tokenizer.pretokenizers[1].type")
        #expect(error?.message.contains("\"Whitespace\"") == true)
        #expect(error?.message.contains("ByteLevel, Digits, Metaspace, Sequence, Split") == true)
    }

    @Test func unsupportedNormalizerAndUnknownSplitRegexAreNamed() {
        let normalizer = loadError(tokenizerJSON(["normalizer": #"{"type": "Lowercase"}"#]))
        #expect(normalizer?.path == "normalizer.type")
        #expect(normalizer?.message.hasPrefix("unsupported normalizer \"Lowercase\"; supported: NFC") == true)
        let split = loadError(
            tokenizerJSON(["pre_tokenizer": #"{"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated", "invert": false}"#]))
        #expect(split?.kind == .unsupported)
        #expect(split?.path == "pre_tokenizer.pattern.Regex")
        #expect(split?.message.contains("\"\\w+\"") == true)
        let decoder = loadError(tokenizerJSON(["decoder": #"{"type": "WordPiece"}"#]))
        #expect(decoder?.path == "decoder.type")
    }

    @Test func malformedMembersGiveTheirPath() {
        let badMerge = loadError(
            tokenizerJSON(["model": #"{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b", "a c"]}"#]))
        #expect(badMerge == TokenizerError(.malformed, path: "model.merges[1]", "merge token \"c\" is not in the vocabulary"))
        let badShape = loadError(tokenizerJSON(["model": #"{"type": "BPE", "vocab": {"a": 0}, "merges": [42]}"#]))
        #expect(badShape?.path == "model.merges[0]")
        let threeParts = loadError(tokenizerJSON(["model": #"{"type": "BPE", "vocab": {"a": 0}, "merges": ["a a a"]}"#]))
        #expect(threeParts?.path == "model.merges[0]")
        let badId = loadError(tokenizerJSON(["model": #"{"type": "BPE", "vocab": {"a": "zero"}, "merges": []}"#]))
        #expect(badId?.path == "model.vocab[\"a\"]")
        let noVocab = loadError(tokenizerJSON(["model": #"{"type": "BPE", "merges": []}"#]))
        #expect(noVocab == TokenizerError(.malformed, path: "model.vocab", "missing"))
        let noModel = loadError(tokenizerJSON(["model": "null"]))
        #expect(noModel == TokenizerError(.malformed, path: "model", "missing"))
        let badFlag = loadError(tokenizerJSON(["added_tokens": #"[{"id": 6, "content": "<s>", "special": "yes"}]"#]))
        #expect(badFlag?.path == "added_tokens[0].special")
        let badBehavior = loadError(
            tokenizerJSON(["pre_tokenizer": #"{"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways"}"#]))
        #expect(badBehavior?.path == "pre_tokenizer.behavior")
        let hugeId = loadError(tokenizerJSON(["model": #"{"type": "BPE", "vocab": {"a": 0, "b": 2000000000}, "merges": []}"#]))
        #expect(hugeId?.path == "model.vocab" && hugeId?.message.contains("2000000000") == true)
        // The largest id JSON can give here once trapped on the + 1 that sized the table.
        let maxId = loadError(tokenizerJSON(["model": #"{"type": "BPE", "vocab": {"a": 0, "b": 9223372036854775807}, "merges": []}"#]))
        #expect(maxId?.path == "model.vocab" && maxId?.message.contains("9223372036854775807") == true)
        let negativeSpecial = loadError(
            tokenizerJSON([
                "post_processor":
                    #"{"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {"<s>": {"id": "<s>", "ids": [-1], "tokens": ["<s>"]}}}"#
            ]))
        #expect(negativeSpecial?.path == "post_processor.special_tokens.<s>.ids[0]")
        let dropout = loadError(tokenizerJSON(["model": #"{"type": "BPE", "dropout": 0.1, "vocab": {}, "merges": []}"#]))
        #expect(dropout?.kind == .unsupported && dropout?.path == "model.dropout")
    }

    @Test func unreadableFilesNameThePath() throws {
        let missing = "/nonexistent/tokenizer.json"
        #expect(throws: TokenizerError(.unreadable, path: missing, "cannot read the file")) {
            try Tokenizer(tokenizerJSON: missing)
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("distill-tokenize-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("tokenizer.json").path
        try Data("{\"model\": ".utf8).write(to: URL(fileURLWithPath: path))
        do {
            _ = try Tokenizer(tokenizerJSON: path)
            Issue.record("a truncated file loaded")
        } catch let error as TokenizerError {
            #expect(error.kind == .unreadable && error.path == path && error.message.hasPrefix("not JSON"))
        }
    }
}
