// distill-tokenize: drives DistillTokenize from JSON lines, for the tests that compare it with
// the `tokenizers` package and transformers (Tests/python/test_tokenizers.py) and for timing.
//
// One JSON object per line on stdin, one reply per line on stdout:
//   {"load": "dir/tokenizer.json"}          → {"kind", "vocabSize", "bos", "eos"}
//   {"loadGGUF": "gguf-tokenizer.json"}     → the same, from GGUF tokenizer metadata dumped to JSON
//                                              by Tests/python/dump_gguf_tokenizer.py
//   {"text": "...", "addSpecial": false}    → {"ids", "pieces", "decoded", "decodedSkippingSpecial"}
//   {"decode": [ids], "skipSpecial": false} → {"text"}
//   {"bench": "file.txt", "runs": 3}        → {"bytes", "tokens", "seconds"} (best of the runs)
// A request that fails gets {"error": "..."}.

import DistillJSON
import DistillTokenize
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// GGUFTokenizerData from the JSON the dump script writes: the `tokenizer.ggml.*` metadata under
/// their key names without the prefix.
func ggufData(_ path: String) throws -> GGUFTokenizerData {
    guard let bytes = FileManager.default.contents(atPath: path) else { throw Failure("cannot read \(path)") }
    let root = try JSON.parse([UInt8](bytes))
    guard let model = root["model"]?.stringValue, let tokens = root["tokens"]?.arrayValue else {
        throw Failure("\(path): model and tokens are required")
    }
    var data = GGUFTokenizerData(model: model, tokens: tokens.map { $0.stringValue ?? "" })
    data.pre = root["pre"]?.stringValue
    data.scores = root["scores"]?.arrayValue?.map { Float($0.doubleValue ?? .nan) }
    data.tokenTypes = root["token_type"]?.arrayValue?.map { Int32($0.intValue ?? 0) }
    data.merges = root["merges"]?.arrayValue?.map { $0.stringValue ?? "" }
    data.bos = root["bos_token_id"]?.intValue
    data.eos = root["eos_token_id"]?.intValue
    data.unknown = root["unknown_token_id"]?.intValue
    data.padding = root["padding_token_id"]?.intValue
    data.addBos = root["add_bos_token"]?.boolValue
    data.addEos = root["add_eos_token"]?.boolValue
    data.addSpacePrefix = root["add_space_prefix"]?.boolValue
    data.chatTemplate = root["chat_template"]?.stringValue
    return data
}

struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func describe(_ tokenizer: Tokenizer) -> JSON {
    JSON.object([
        ("kind", JSON(tokenizer.kind.rawValue)), ("vocabSize", JSON(tokenizer.vocabSize)),
        ("bos", tokenizer.bos.map { JSON($0) } ?? .null), ("eos", tokenizer.eos.map { JSON($0) } ?? .null),
    ])
}

func now() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}

func handle(_ request: JSON, _ tokenizer: inout Tokenizer?) throws -> JSON {
    if let path = request["load"]?.stringValue {
        let loaded = try Tokenizer(tokenizerJSON: path)
        tokenizer = loaded
        return describe(loaded)
    }
    if let path = request["loadGGUF"]?.stringValue {
        let loaded = try Tokenizer(gguf: ggufData(path))
        tokenizer = loaded
        return describe(loaded)
    }
    guard let tokenizer else { throw Failure("no tokenizer loaded") }
    if let text = request["text"]?.stringValue {
        let encoding = tokenizer.encoding(text, addSpecial: request["addSpecial"]?.boolValue ?? false)
        return JSON.object([
            ("ids", JSON.array(encoding.ids)), ("pieces", JSON.array(encoding.pieces)),
            ("decoded", JSON(tokenizer.decode(encoding.ids, skipSpecial: false))),
            ("decodedSkippingSpecial", JSON(tokenizer.decode(encoding.ids, skipSpecial: true))),
        ])
    }
    if let ids = request["decode"]?.arrayValue {
        let text = tokenizer.decode(ids.map { $0.intValue ?? -1 }, skipSpecial: request["skipSpecial"]?.boolValue ?? false)
        return JSON.object([("text", JSON(text))])
    }
    if let path = request["bench"]?.stringValue {
        guard let bytes = FileManager.default.contents(atPath: path) else { throw Failure("cannot read \(path)") }
        let text = String(decoding: bytes, as: UTF8.self)
        var best = Double.infinity
        var count = 0
        for _ in 0..<max(1, request["runs"]?.intValue ?? 3) {
            let start = now()
            count = tokenizer.encode(text, addSpecial: false).count
            best = min(best, now() - start)
        }
        return JSON.object([("bytes", JSON(bytes.count)), ("tokens", JSON(count)), ("seconds", JSON(best))])
    }
    throw Failure("unknown request: expected load, loadGGUF, text, decode or bench")
}

var tokenizer: Tokenizer?
while let line = readLine(strippingNewline: true) {
    guard !line.isEmpty else { continue }
    let reply: JSON
    do {
        reply = try handle(JSON.parse(line), &tokenizer)
    } catch {
        reply = JSON.object([("error", JSON("\(error)"))])
    }
    print(reply.serializedString())
    fflush(nil)  // all streams: naming `stdout` is a data race to Swift 6
}
