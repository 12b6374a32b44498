import DistillJSON

/// Reads vocabularies: labels for output ids.
///
/// Accepted files (told apart by content):
/// - a JSON list of strings (index = id), or of [token, score] pairs;
/// - a Hugging Face `tokenizer.json`: `model.vocab` as a {token: id} map
///   (BPE, WordPiece, WordLevel) or a list of [token, score] (Unigram, index = id),
///   plus `added_tokens` [{id, content}] which override or extend it;
/// - a bare {token: id} map (`vocab.json`);
/// - plain text, one token per line (line n = id n−1; a final newline ends the last line).
///
/// The result is indexed by id; ids that no token names are filled with "<id N>".
public enum Vocabulary {
    /// Ids above this are refused as implausible (they would allocate the gap).
    static let maxId = 1 << 24

    public static func read(path: String) throws -> [String] {
        let map = try MappedFile(path: path)
        return try map.withBytes { raw in try read(bytes: droppingBOM(raw), path: path) }
    }

    static func read(bytes: UnsafeRawBufferPointer, path: String) throws -> [String] {
        switch firstNonSpace(bytes) {
        case UInt8(ascii: "["), UInt8(ascii: "{"):
            do {
                return try fromJSON(try JSON.parse(bytes), path: path)
            } catch let e as JSONParseError {
                // "[PAD]" on the first line of a text vocabulary is not JSON.
                if path.lowercased().hasSuffix(".json") {
                    throw fileError(.badLine, path, line: e.line, "the vocabulary is not valid JSON: \(e.message)")
                }
                try checkUTF8(bytes, path: path)
                return textLines(bytes)
            }
        default:
            try checkUTF8(bytes, path: path)
            return textLines(bytes)
        }
    }

    static func textLines(_ bytes: UnsafeRawBufferPointer) -> [String] {
        var tokens: [String] = []
        forEachLine(bytes) { _, line in tokens.append(String(decoding: line, as: UTF8.self)) }
        return tokens
    }

    static func fromJSON(_ json: JSON, path: String) throws -> [String] {
        if let items = json.arrayValue {
            return try fromList(items, path: path, what: "the vocabulary list")
        }
        var byId: [Int: String] = [:]
        if let model = json["model"] {
            guard let vocab = model["vocab"] else {
                throw fileError(.malformedHeader, path, "tokenizer.json has no model.vocab")
            }
            if let items = vocab.arrayValue {
                for (i, t) in try fromList(items, path: path, what: "model.vocab").enumerated() { byId[i] = t }
            } else if vocab.isObject {
                try addMap(vocab, into: &byId, path: path, what: "model.vocab")
            } else {
                throw fileError(.malformedHeader, path, "model.vocab is \(vocab.kindDescription), not a map or a list")
            }
            if let added = json["added_tokens"]?.arrayValue {
                for (i, t) in added.enumerated() {
                    guard let id = t["id"]?.intValue, let content = t["content"]?.stringValue else {
                        throw fileError(.malformedHeader, path, "added_tokens[\(i)] lacks an integer id or a string content")
                    }
                    guard id >= 0, id < maxId else {
                        throw fileError(.indexOutOfRange, path, "added_tokens[\(i)] has id \(id)")
                    }
                    byId[id] = content
                }
            }
        } else if json.isObject {
            try addMap(json, into: &byId, path: path, what: "the vocabulary map")
        } else {
            throw fileError(.malformedHeader, path, "the vocabulary is \(json.kindDescription)")
        }
        guard let top = byId.keys.max() else { return [] }
        var out = (0...top).map { "<id \($0)>" }
        for (id, t) in byId { out[id] = t }
        return out
    }

    private static func addMap(_ object: JSON, into byId: inout [Int: String], path: String, what: String) throws {
        for (token, value) in object.members ?? [] {
            guard let id = value.intValue else {
                throw fileError(.malformedHeader, path, "\(what): token '\(token)' maps to \(value.kindDescription), not an id")
            }
            guard id >= 0, id < maxId else {
                throw fileError(.indexOutOfRange, path, "\(what): token '\(token)' has id \(id)")
            }
            if byId[id] == nil { byId[id] = token }
        }
    }

    private static func fromList(_ items: [JSON], path: String, what: String) throws -> [String] {
        try items.enumerated().map { i, item in
            if let s = item.stringValue { return s }
            if let pair = item.arrayValue, let s = pair.first?.stringValue { return s }
            throw fileError(.malformedHeader, path, "\(what)[\(i)] is \(item.kindDescription), not a token")
        }
    }

    /// The label for an output id.
    public static func label(_ id: Int, in vocabulary: [String]?) -> String {
        guard let vocabulary, id >= 0, id < vocabulary.count else { return "<id \(id)>" }
        return vocabulary[id]
    }
}
