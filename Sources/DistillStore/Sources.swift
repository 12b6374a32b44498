import DistillJSON
import DistillTensor

/// File formats for teacher outputs.
public enum TeacherFormat: String, Sendable, CaseIterable {
    case safetensors, npy, jsonl
}

/// Options for loading teacher outputs; persisted in the workspace as a JSON object
/// with these member names.
///
/// - `kind` ("logits" | "probs" | "logprobs"): for `.npy`, what the values mean
///   (default logits). For safetensors and JSON Lines, which value tensor/field to
///   use when the file holds several (otherwise the only one present is used).
/// - `allowNonFinite` (bool, default false): keep outputs holding NaN or +∞
///   (counted and reported as a warning) instead of refusing them.
/// - `vocabSize` (int): vocabulary size for top-k outputs when the file does not
///   say (`__metadata__.vocab_size` wins over a vocabulary file's length; this
///   option wins over both).
/// - `vocabulary` (path): a vocabulary file (text, JSON list, tokenizer.json or a
///   {token: id} map) giving labels to output ids.
/// - `indices` (path, `.npy` only): an int32/int64 `.npy` [N,T,K] of top-k indices;
///   the main `.npy` then holds the matching top-k values.
/// - `mask` (path, `.npy` only): a `.npy` [N,T] mask (u1, b1, i4 or i8).
public struct TeacherOptions: Sendable, Equatable {
    public var kind: OutputKind?
    public var allowNonFinite: Bool
    public var vocabSize: Int?
    public var vocabulary: String?
    public var indices: String?
    public var mask: String?

    public init(
        kind: OutputKind? = nil, allowNonFinite: Bool = false, vocabSize: Int? = nil, vocabulary: String? = nil,
        indices: String? = nil, mask: String? = nil
    ) {
        self.kind = kind
        self.allowNonFinite = allowNonFinite
        self.vocabSize = vocabSize
        self.vocabulary = vocabulary
        self.indices = indices
        self.mask = mask
    }

    /// Reads options from a JSON object; unknown members are an error (`.unknownFormat`).
    public init(json: JSON?) throws {
        self.init()
        guard let json, !json.isNull else { return }
        guard let members = json.members else {
            throw StoreError(.unknownFormat, "teacher options must be an object, got \(json.kindDescription)")
        }
        for (key, value) in members {
            switch key {
            case "kind":
                guard let s = value.stringValue, let k = OutputKind(rawValue: s) else {
                    throw StoreError(.unknownFormat, "option kind must be one of logits, probs, logprobs")
                }
                kind = k
            case "allowNonFinite":
                guard let b = value.boolValue else {
                    throw StoreError(.unknownFormat, "option allowNonFinite must be a boolean")
                }
                allowNonFinite = b
            case "vocabSize":
                guard let n = value.intValue, n > 0 else {
                    throw StoreError(.unknownFormat, "option vocabSize must be a positive integer")
                }
                vocabSize = n
            case "vocabulary", "indices", "mask":
                guard let s = value.stringValue else {
                    throw StoreError(.unknownFormat, "option \(key) must be a path string")
                }
                if key == "vocabulary" { vocabulary = s } else if key == "indices" { indices = s } else { mask = s }
            default:
                throw StoreError(.unknownFormat, "unknown teacher option '\(key)'")
            }
        }
    }

    public var json: JSON {
        let o = JSON.object()
        if let kind { o["kind"] = JSON(kind.rawValue) }
        if allowNonFinite { o["allowNonFinite"] = JSON(true) }
        if let vocabSize { o["vocabSize"] = JSON(vocabSize) }
        if let vocabulary { o["vocabulary"] = JSON(vocabulary) }
        if let indices { o["indices"] = JSON(indices) }
        if let mask { o["mask"] = JSON(mask) }
        return o
    }

    /// The same options with paths made absolute (for persistence).
    func absolutized() -> TeacherOptions {
        var o = self
        o.vocabulary = vocabulary.map(absolutePath)
        o.indices = indices.map(absolutePath)
        o.mask = mask.map(absolutePath)
        return o
    }
}

/// Where a teacher comes from: a file, its format (nil = detect from content) and options.
public struct TeacherSource: Sendable, Equatable {
    public var path: String
    public var format: TeacherFormat?
    public var options: TeacherOptions

    public init(path: String, format: TeacherFormat? = nil, options: TeacherOptions = TeacherOptions()) {
        self.path = path
        self.format = format
        self.options = options
    }
}

/// Refuses a path holding a NUL character, naming the request member: the C
/// calls would read only the part before the NUL (`good.safetensors\0/../x`
/// would load `good.safetensors` but be reported and persisted under the
/// whole string).
func checkPath(_ path: String, field: String) throws {
    guard let at = path.utf8.firstIndex(of: 0) else { return }
    let offset = path.utf8.distance(from: path.utf8.startIndex, to: at)
    throw StoreError(
        .invalidPath, "the path holds a NUL character at byte \(offset); a path cannot contain NUL",
        field: field, numbers: ["byte": offset])
}

extension TeacherSource {
    /// Throws `.invalidPath` naming the member (`path`, `options.vocabulary`, ...) for a path holding NUL.
    public func checkPaths() throws {
        try checkPath(path, field: "path")
        if let p = options.vocabulary { try checkPath(p, field: "options.vocabulary") }
        if let p = options.indices { try checkPath(p, field: "options.indices") }
        if let p = options.mask { try checkPath(p, field: "options.mask") }
    }
}

extension DatasetSource {
    /// Throws `.invalidPath` naming `path` when it holds NUL.
    public func checkPaths() throws { try checkPath(path, field: "path") }
}

/// File formats for datasets.
public enum DatasetFormat: String, Sendable, CaseIterable {
    /// JSON Lines, one object per line.
    case jsonl
    /// RFC 4180 CSV with a header row (the `delimiter` option makes it TSV etc.).
    case csv
    /// Plain text, one input per line (input lists only).
    case txt
    /// A JSON list of strings (input lists only).
    case json
}

public enum DatasetKind: String, Sendable, CaseIterable {
    /// Examples with a full context (teacher's) and a simplified context (student's).
    case paired
    /// A plain list of inputs.
    case inputs
}

/// Options for loading a dataset, persisted with these member names.
///
/// - `fields` (object {canonical: name in file}): renames the canonical fields
///   `id`, `full`, `simplified`, `target`, `label` (paired) and `input` (inputs),
///   e.g. {"full": "context", "simplified": "query"}.
/// - `delimiter` (one-character string, CSV only; default ",", "\t" for `.tsv` files).
public struct DatasetOptions: Sendable, Equatable {
    public var fields: [String: String]
    public var delimiter: UInt8?

    public init(fields: [String: String] = [:], delimiter: UInt8? = nil) {
        self.fields = fields
        self.delimiter = delimiter
    }

    static let canonicalFields: Set<String> = ["id", "full", "simplified", "target", "label", "input"]

    public init(json: JSON?) throws {
        self.init()
        guard let json, !json.isNull else { return }
        guard let members = json.members else {
            throw StoreError(.unknownFormat, "dataset options must be an object, got \(json.kindDescription)")
        }
        for (key, value) in members {
            switch key {
            case "fields":
                guard let pairs = value.members else {
                    throw StoreError(.unknownFormat, "option fields must be an object {canonical: name}")
                }
                for (k, v) in pairs {
                    guard Self.canonicalFields.contains(k) else {
                        throw StoreError(
                            .unknownFormat,
                            "option fields: unknown field '\(k)' (expected one of \(Self.canonicalFields.sorted().joined(separator: ", ")))"
                        )
                    }
                    guard let s = v.stringValue else {
                        throw StoreError(.unknownFormat, "option fields: '\(k)' must map to a string")
                    }
                    fields[k] = s
                }
            case "delimiter":
                guard let s = value.stringValue, s.utf8.count == 1, let b = s.utf8.first, b != 0x22, b != 0x0A,
                    b != 0x0D
                else {
                    throw StoreError(.unknownFormat, "option delimiter must be a single ASCII character other than a quote or newline")
                }
                delimiter = b
            default:
                throw StoreError(.unknownFormat, "unknown dataset option '\(key)'")
            }
        }
    }

    public var json: JSON {
        let o = JSON.object()
        if !fields.isEmpty {
            let f = JSON.object()
            for (k, v) in fields.sorted(by: { $0.key < $1.key }) { f[k] = JSON(v) }
            o["fields"] = f
        }
        if let delimiter { o["delimiter"] = JSON(String(UnicodeScalar(delimiter))) }
        return o
    }

    func field(_ canonical: String) -> String { fields[canonical] ?? canonical }
}

public struct DatasetSource: Sendable, Equatable {
    public var path: String
    public var kind: DatasetKind
    public var format: DatasetFormat?
    public var options: DatasetOptions

    public init(path: String, kind: DatasetKind = .paired, format: DatasetFormat? = nil, options: DatasetOptions = DatasetOptions()) {
        self.path = path
        self.kind = kind
        self.format = format
        self.options = options
    }
}
