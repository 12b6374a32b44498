import DistillJSON
import FuzzSupport

@testable import DistillTokenize

/// The tokenizer.json reader and the tokenizer it builds (Sources/DistillTokenize): a model
/// directory's tokenizer is a file someone else wrote, so any bytes must give a tokenizer or a
/// `TokenizerError`, never a trap. The first byte picks the text encoded (plain, with specials
/// and newlines, or non-ASCII with combining marks); the rest is the file. A tokenizer that
/// loads must encode that text, with and without special tokens, into ids below its
/// `vocabSize`, and decode them back.
@_cdecl("FuzzTokenizer_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in fuzz(data!, size) }
}

let texts = [
    "Hello world, it's 2026!", "<s> a\n\n  b</s>\tc <unk>", "e\u{301}té 日本語 🙂 \u{0}\u{7F} ab ab abab",
    "",
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzInput(data, size, refusing: TokenizerError.self) { control, rest in
        // Bytes that are not JSON are the JSON parser's refusal (fuzzed by FuzzDispatch), not a finding.
        guard let root = try? JSON.parse(rest) else { return }
        let tokenizer = try Tokenizer(tokenizerJSON: root)
        let text = texts[Int(control) % texts.count]
        for addSpecial in [false, true] {
            let ids = tokenizer.encode(text, addSpecial: addSpecial)
            precondition(ids.allSatisfy { $0 >= 0 && $0 < tokenizer.vocabSize }, "an id outside 0..<\(tokenizer.vocabSize)")
            _ = tokenizer.decode(ids, skipSpecial: control & 4 == 0)
        }
    }
}
