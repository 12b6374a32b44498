import DistillJSON
import Foundation

/// A JSON value with the path that reached it, so that every complaint names its member.
struct Member {
    let json: JSON
    let path: String

    func malformed(_ message: String) -> TokenizerError { TokenizerError(.malformed, path: path, message) }

    /// The member `key`, nil when it is absent or null.
    func optional(_ key: String) throws -> Member? {
        guard json.isObject else { throw malformed("expected an object, found \(json.kindDescription)") }
        guard let child = json[key], !child.isNull else { return nil }
        return Member(json: child, path: path.isEmpty ? key : "\(path).\(key)")
    }

    func required(_ key: String) throws -> Member {
        guard let child = try optional(key) else {
            throw TokenizerError(.malformed, path: path.isEmpty ? key : "\(path).\(key)", "missing")
        }
        return child
    }

    func string() throws -> String {
        guard let value = json.stringValue else { throw malformed("expected a string, found \(json.kindDescription)") }
        return value
    }

    func bool() throws -> Bool {
        guard let value = json.boolValue else { throw malformed("expected true or false, found \(json.kindDescription)") }
        return value
    }

    func int() throws -> Int {
        guard let value = json.intValue else { throw malformed("expected an integer, found \(json.kindDescription)") }
        return value
    }

    func array() throws -> [Member] {
        guard let items = json.arrayValue else { throw malformed("expected an array, found \(json.kindDescription)") }
        return items.enumerated().map { Member(json: $1, path: "\(path)[\($0)]") }
    }

    /// A single scalar (Metaspace's replacement, Strip's content).
    func scalar() throws -> Unicode.Scalar {
        let text = try string()
        var scalars = text.unicodeScalars.makeIterator()
        guard let first = scalars.next(), scalars.next() == nil else {
            throw malformed("expected a single character, found \"\(text)\"")
        }
        return first
    }

    func optionalBool(_ key: String, default value: Bool) throws -> Bool {
        try optional(key)?.bool() ?? value
    }

    func optionalString(_ key: String) throws -> String? {
        try optional(key)?.string()
    }

    /// The `type` tag of a component.
    func type() throws -> String { try required("type").string() }
}

extension Tokenizer {
    /// Reads a Hugging Face `tokenizer.json`. The beginning- and end-of-sequence tokens come from
    /// the `tokenizer_config.json` beside it when there is one (`bos_token`, `eos_token`), else
    /// from the tokens the post-processor places before and after the text.
    public convenience init(tokenizerJSON path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TokenizerError(.unreadable, path: path, "cannot read the file")
        }
        let root: JSON
        do {
            root = try JSON.parse([UInt8](data))
        } catch {
            throw TokenizerError(.unreadable, path: path, "not JSON: \(error)")
        }
        let directory = (path as NSString).deletingLastPathComponent
        let configPath = (directory.isEmpty ? "." : directory) + "/tokenizer_config.json"
        var config: JSON?
        if let configData = FileManager.default.contents(atPath: configPath) {
            do {
                config = try JSON.parse([UInt8](configData))
            } catch {
                throw TokenizerError(.unreadable, path: configPath, "not JSON: \(error)")
            }
        }
        try self.init(tokenizerJSON: root, config: config)
    }

    /// Builds a tokenizer from a parsed tokenizer.json (and optionally its tokenizer_config.json).
    public convenience init(tokenizerJSON root: JSON, config: JSON? = nil) throws {
        try self.init(parts: TokenizerJSONReader.parts(Member(json: root, path: ""), config: config))
    }
}

/// Reads the components of a tokenizer.json.
enum TokenizerJSONReader {
    static func parts(_ root: Member, config: JSON?) throws -> Tokenizer.Parts {
        guard root.json.isObject else { throw root.malformed("expected a tokenizer.json object, found \(root.json.kindDescription)") }
        let normalizer = try root.optional("normalizer").map(readNormalizer)
        let preTokenizer = try root.optional("pre_tokenizer").map(readPreTokenizer)
        let decoder = try root.optional("decoder").map(readDecoder)
        let model = try readModel(root.required("model"))
        let addedTokens = try readAddedTokens(root.optional("added_tokens"), model: model)
        func tokenId(_ content: String) -> Int? {
            addedTokens.first(where: { ExactText($0.content) == ExactText(content) })?.id ?? model.ids[ExactText(content)]
        }
        let postProcessor = try root.optional("post_processor").map(readPostProcessor)

        var bos = postProcessor?.leadingToken
        var eos = postProcessor?.trailingToken
        if let config {
            let member = Member(json: config, path: "tokenizer_config.json")
            if let name = try configuredToken(member, "bos_token") {
                guard let id = tokenId(name) else { throw member.malformed("bos_token \"\(name)\" is not a token") }
                bos = id
            }
            if let name = try configuredToken(member, "eos_token") {
                guard let id = tokenId(name) else { throw member.malformed("eos_token \"\(name)\" is not a token") }
                eos = id
            }
        }
        let byteLevel = preTokenizer?.isByteLevel ?? false
        return Tokenizer.Parts(
            kind: byteLevel ? .byteLevelBPE : .sentencePieceBPE, model: model, normalizer: normalizer,
            preTokenizer: preTokenizer, postProcessor: postProcessor, decoder: decoder, addedTokens: addedTokens,
            bos: bos, eos: eos)
    }

    /// A token named in tokenizer_config.json: a string, or an object with `content`.
    private static func configuredToken(_ config: Member, _ key: String) throws -> String? {
        guard config.json.isObject, let value = try config.optional(key) else { return nil }
        if value.json.isObject { return try value.required("content").string() }
        return try value.string()
    }

    // MARK: Model

    static func readModel(_ member: Member) throws -> BPEModel {
        let type = try member.optionalString("type")
        if let type, type != "BPE" {
            throw TokenizerError.unsupported("model type", type, at: member.path + ".type", supported: ["BPE"])
        }
        let hasMerges = try member.optional("merges") != nil
        if type == nil && !hasMerges {
            throw TokenizerError(.malformed, path: member.path + ".type", "missing (and no merges to recognise a BPE model by)")
        }
        if let dropout = try member.optional("dropout"), let value = dropout.json.doubleValue, value != 0 {
            throw TokenizerError(
                .unsupported, path: dropout.path, "BPE dropout \(value) makes encoding random; only null or 0 is supported")
        }
        let vocabMember = try member.required("vocab")
        guard let entries = vocabMember.json.members else {
            throw vocabMember.malformed("expected an object of token → id, found \(vocabMember.json.kindDescription)")
        }
        var vocabulary: [ExactText: Int] = [:]
        vocabulary.reserveCapacity(entries.count)
        for (token, value) in entries {
            guard let id = value.intValue, id >= 0 else {
                throw TokenizerError(.malformed, path: "\(vocabMember.path)[\"\(token)\"]", "expected a non-negative integer id")
            }
            vocabulary[ExactText(token)] = id
        }
        let mergesMember = try member.required("merges")
        let merges = try readMerges(mergesMember)
        var options = BPEModel.Options()
        options.unknown = try member.optionalString("unk_token")
        options.fuseUnknown = try member.optionalBool("fuse_unk", default: false)
        options.byteFallback = try member.optionalBool("byte_fallback", default: false)
        options.ignoreMerges = try member.optionalBool("ignore_merges", default: false)
        options.continuingPrefix = try member.optionalString("continuing_subword_prefix") ?? ""
        options.endSuffix = try member.optionalString("end_of_word_suffix") ?? ""
        return try BPEModel(vocabulary: vocabulary, merges: merges, options: options, path: mergesMember.path)
    }

    /// Merges as `"left right"` strings (older files) or `["left", "right"]` pairs.
    static func readMerges(_ member: Member) throws -> [(String, String)] {
        guard let items = member.json.arrayValue else {
            throw member.malformed("expected an array of merges, found \(member.json.kindDescription)")
        }
        var merges: [(String, String)] = []
        merges.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            if let text = item.stringValue {
                merges.append(try mergePair(text, path: "\(member.path)[\(index)]"))
            } else if let pair = item.arrayValue, pair.count == 2, let left = pair[0].stringValue, let right = pair[1].stringValue {
                merges.append((left, right))
            } else {
                throw TokenizerError(
                    .malformed, path: "\(member.path)[\(index)]",
                    "expected \"left right\" or [\"left\", \"right\"], found \(item.kindDescription)")
            }
        }
        return merges
    }

    /// A `"left right"` merge. Split on the scalar U+0020: a space followed by a combining mark
    /// is one Character, so `String.split(separator: " ")` would miss it.
    static func mergePair(_ text: String, path: String) throws -> (String, String) {
        let parts = text.unicodeScalars.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw TokenizerError(.malformed, path: path, "a merge string must be two tokens separated by one space, found \"\(text)\"")
        }
        return (String(String.UnicodeScalarView(parts[0])), String(String.UnicodeScalarView(parts[1])))
    }

    /// Added tokens get their ids as the reference assigns them: the vocabulary's id for a token
    /// it has, else the next free id after the vocabulary.
    static func readAddedTokens(_ member: Member?, model: BPEModel) throws -> [AddedToken] {
        guard let member else { return [] }
        var tokens: [AddedToken] = []
        var ids: [ExactText: Int] = [:]
        var next = model.ids.count
        for item in try member.array() {
            let content = try item.required("content").string()
            guard !content.isEmpty else { continue }
            _ = try item.required("id").int()
            let id: Int
            if let known = ids[ExactText(content)] ?? model.ids[ExactText(content)] {
                id = known
            } else {
                id = next
                next += 1
            }
            ids[ExactText(content)] = id
            var token = AddedToken(id: id, content: content, special: try item.optionalBool("special", default: false))
            token.lstrip = try item.optionalBool("lstrip", default: false)
            token.rstrip = try item.optionalBool("rstrip", default: false)
            token.singleWord = try item.optionalBool("single_word", default: false)
            token.normalized = try item.optionalBool("normalized", default: !token.special)
            tokens.removeAll { ExactText($0.content) == ExactText(content) }
            tokens.append(token)
        }
        return tokens
    }

    // MARK: Normalizers

    static func readNormalizer(_ member: Member) throws -> Normalizer {
        let type = try member.type()
        switch type {
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Prepend":
            return .prepend(Array(try member.required("prepend").string().unicodeScalars))
        case "Replace":
            let (pattern, content) = try readReplace(member, what: "normalizer")
            return .replace(pattern: pattern, content: content)
        case "Strip":
            return .strip(
                left: try member.optionalBool("strip_left", default: true), right: try member.optionalBool("strip_right", default: true))
        case "Sequence":
            return .sequence(try member.required("normalizers").array().map(readNormalizer))
        default:
            throw TokenizerError.unsupported("normalizer", type, at: member.path + ".type", supported: Normalizer.supported)
        }
    }

    /// A Replace's literal pattern and content (regex patterns are refused, naming them).
    private static func readReplace(_ member: Member, what: String) throws -> ([Unicode.Scalar], [Unicode.Scalar]) {
        let pattern = try member.required("pattern")
        let content = Array(try member.required("content").string().unicodeScalars)
        if let literal = try pattern.optional("String") {
            let scalars = Array(try literal.string().unicodeScalars)
            guard !scalars.isEmpty else { throw literal.malformed("an empty Replace pattern") }
            return (scalars, content)
        }
        if let regex = try pattern.optional("Regex") {
            throw TokenizerError(
                .unsupported, path: regex.path,
                "unsupported Replace \(what) regex \"\(try regex.string())\"; only String patterns are supported")
        }
        throw pattern.malformed("expected {\"String\": ...} or {\"Regex\": ...}")
    }

    // MARK: Pre-tokenizers

    static func readPreTokenizer(_ member: Member) throws -> PreTokenizer {
        let type = try member.type()
        switch type {
        case "ByteLevel":
            return .byteLevel(
                addPrefixSpace: try member.optionalBool("add_prefix_space", default: true),
                useRegex: try member.optionalBool("use_regex", default: true))
        case "Split":
            let pattern = try member.required("pattern")
            let matcher: SplitMatcher
            if let literal = try pattern.optional("String") {
                matcher = .literal(Array(try literal.string().unicodeScalars))
            } else if let regex = try pattern.optional("Regex") {
                let source = try regex.string()
                guard let known = SplitPattern(regexSource: source) else {
                    throw TokenizerError(
                        .unsupported, path: regex.path,
                        "unsupported Split regex \"\(source)\"; supported: \(SplitPattern.supportedDescriptions.joined(separator: ", ")) (exactly as the reference tokenizers spell them)"
                    )
                }
                matcher = .pattern(known)
            } else {
                throw pattern.malformed("expected {\"String\": ...} or {\"Regex\": ...}")
            }
            let behaviorMember = try member.required("behavior")
            let behaviorName = try behaviorMember.string()
            guard let behavior = SplitBehavior(rawValue: behaviorName) else {
                throw behaviorMember.malformed(
                    "unknown split behavior \"\(behaviorName)\"; expected Isolated, Removed, MergedWithPrevious, MergedWithNext or Contiguous"
                )
            }
            return .split(matcher, behavior, invert: try member.optionalBool("invert", default: false))
        case "Digits":
            return .digits(individual: try member.optionalBool("individual_digits", default: false))
        case "Metaspace":
            let (replacement, scheme) = try readMetaspace(member)
            return .metaspace(replacement: replacement, prepend: scheme, split: try member.optionalBool("split", default: true))
        case "Sequence":
            return .sequence(try member.required("pretokenizers").array().map(readPreTokenizer))
        default:
            throw TokenizerError.unsupported("pre-tokenizer", type, at: member.path + ".type", supported: PreTokenizer.supported)
        }
    }

    /// Metaspace's replacement and prepend scheme (older files say `add_prefix_space` instead).
    private static func readMetaspace(_ member: Member) throws -> (Unicode.Scalar, PrependScheme) {
        let replacement = try member.required("replacement").scalar()
        var scheme = PrependScheme.always
        if let schemeMember = try member.optional("prepend_scheme") {
            let name = try schemeMember.string()
            guard let known = PrependScheme(rawValue: name) else {
                throw schemeMember.malformed("unknown prepend_scheme \"\(name)\"; expected always, first or never")
            }
            scheme = known
        }
        if let legacy = try member.optional("add_prefix_space"), try legacy.bool() == false {
            let declared = try member.optional("prepend_scheme") != nil
            guard scheme == .never || !declared else {
                throw legacy.malformed("add_prefix_space false contradicts prepend_scheme \"\(scheme.rawValue)\"")
            }
            scheme = .never
        }
        return (replacement, scheme)
    }

    // MARK: Decoders

    static func readDecoder(_ member: Member) throws -> Decoder {
        let type = try member.type()
        switch type {
        case "ByteLevel": return .byteLevel
        case "ByteFallback": return .byteFallback
        case "Fuse": return .fuse
        case "Strip":
            let start = try member.required("start").int()
            let stop = try member.required("stop").int()
            guard start >= 0, stop >= 0 else { throw member.malformed("start and stop must not be negative") }
            return .strip(content: try member.required("content").scalar(), start: start, stop: stop)
        case "Replace":
            let (pattern, content) = try readReplace(member, what: "decoder")
            return .replace(pattern: pattern, content: content)
        case "Metaspace":
            let (replacement, scheme) = try readMetaspace(member)
            return .metaspace(replacement: replacement, prepend: scheme)
        case "Sequence":
            return .sequence(try member.required("decoders").array().map(readDecoder))
        default:
            throw TokenizerError.unsupported("decoder", type, at: member.path + ".type", supported: Decoder.supported)
        }
    }

    // MARK: Post-processors

    static func readPostProcessor(_ member: Member) throws -> PostProcessor {
        let type = try member.type()
        switch type {
        case "ByteLevel":
            return .offsetsOnly
        case "TemplateProcessing":
            var specials: [String: (ids: [Int], pieces: [String])] = [:]
            if let table = try member.optional("special_tokens") {
                guard let entries = table.json.members else { throw table.malformed("expected an object") }
                for (name, value) in entries {
                    let entry = Member(json: value, path: "\(table.path).\(name)")
                    let ids = try entry.required("ids").array().map { item in
                        let id = try item.int()
                        guard id >= 0 else { throw item.malformed("a token id must not be negative") }
                        return id
                    }
                    let pieces = try entry.required("tokens").array().map { try $0.string() }
                    guard ids.count == pieces.count else { throw entry.malformed("ids and tokens differ in length") }
                    specials[name] = (ids, pieces)
                }
            }
            var items: [PostProcessor.Item] = []
            for item in try member.required("single").array() {
                if let sequence = try item.optional("Sequence") {
                    let name = try sequence.required("id").string()
                    guard name == "A" else { throw sequence.malformed("a single-text template can only hold sequence A, found \(name)") }
                    items.append(.text)
                } else if let special = try item.optional("SpecialToken") {
                    let idMember = try special.required("id")
                    let name = try idMember.string()
                    guard let entry = specials[name] else {
                        throw idMember.malformed("special token \"\(name)\" is not in special_tokens")
                    }
                    items.append(.special(ids: entry.ids, pieces: entry.pieces))
                } else {
                    throw item.malformed("expected {\"Sequence\": ...} or {\"SpecialToken\": ...}")
                }
            }
            return .template(items)
        case "RobertaProcessing", "BertProcessing":
            func token(_ key: String) throws -> PostProcessor.Item {
                let pair = try member.required(key)
                let parts = try pair.array()
                guard parts.count == 2 else { throw pair.malformed("expected [token, id]") }
                let id = try parts[1].int()
                guard id >= 0 else { throw parts[1].malformed("a token id must not be negative") }
                return .special(ids: [id], pieces: [try parts[0].string()])
            }
            return .template([try token("cls"), .text, try token("sep")])
        case "Sequence":
            return .sequence(try member.required("processors").array().map(readPostProcessor))
        default:
            throw TokenizerError.unsupported("post-processor", type, at: member.path + ".type", supported: PostProcessor.supported)
        }
    }
}
