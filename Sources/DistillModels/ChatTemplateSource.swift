import DistillJSON
import DistillStore
import DistillTokenize
import Foundation

/// A model's own chat template, as its files give it, with the special tokens' texts the
/// template reads (`bos_token`, `eos_token`, …): transformers passes its `special_tokens_map` to
/// the template, so these are what it would pass for the same files.
///
/// Read where transformers reads it: a GGUF file's `tokenizer.chat_template` metadata, or a Hugging
/// Face directory's `tokenizer_config.json` `chat_template` (a string, or a list of
/// `{name, template}` of which the one named "default" is used). A model without one has none;
/// a damaged tokenizer_config.json never stops a load that did not need it (it is recorded, and
/// named when a request asks for the chat template).
public struct ChatTemplateSource: Sendable, Equatable {
    /// The template's Jinja text; nil when the model has none.
    public var template: String?
    /// Why there is none when its file says something unusable (a chat_template of another type).
    public var problem: String?
    /// Where the template is read from, for messages.
    public var origin: String
    /// `bos_token`, `eos_token`, `unk_token`, `pad_token` as texts, those the files define.
    public var specialTokens: [String: String]

    public init(template: String?, problem: String? = nil, origin: String, specialTokens: [String: String]) {
        self.template = template
        self.problem = problem
        self.origin = origin
        self.specialTokens = specialTokens
    }

    public static let none = ChatTemplateSource(template: nil, origin: "", specialTokens: [:])

    /// From a GGUF file's metadata (`tokenizer.chat_template`, which the file's reading already
    /// checked is a string); the special tokens are the vocabulary entries of the
    /// `tokenizer.ggml.*_token_id` keys, as transformers' GGUF reading makes them.
    static func gguf(_ data: GGUFTokenizerData, path: String) -> ChatTemplateSource {
        var tokens: [String: String] = [:]
        for (name, id) in [("bos_token", data.bos), ("eos_token", data.eos), ("unk_token", data.unknown), ("pad_token", data.padding)] {
            if let id, data.tokens.indices.contains(id) { tokens[name] = data.tokens[id] }
        }
        return .init(template: data.chatTemplate, origin: "\(path) (metadata tokenizer.chat_template)", specialTokens: tokens)
    }

    /// From a Hugging Face directory, as transformers reads it: `chat_template.jinja` when present
    /// (newer saves keep the template there, and it takes priority), else `tokenizer_config.json`'s
    /// `chat_template` (a string, or the entry named "default" of a list). The special tokens'
    /// texts come from tokenizer_config.json, else special_tokens_map.json (older saves), else
    /// `fallback` (the tokenizer's own BOS and EOS).
    static func huggingFace(directory: String, fallback: [String: String]) -> ChatTemplateSource {
        var tokens = fallback
        let mapPath = directory + "/special_tokens_map.json"
        if FileManager.default.fileExists(atPath: mapPath), let map = try? HuggingFaceDirectory.readJSON(mapPath) {
            read(specialTokens: map, into: &tokens)
        }
        let path = directory + "/tokenizer_config.json"
        var config: JSON?
        var problem: String?
        if FileManager.default.fileExists(atPath: path) {
            do { config = try HuggingFaceDirectory.readJSON(path) } catch { problem = "\(error)" }
        }
        if let config { read(specialTokens: config, into: &tokens) }
        let jinjaPath = directory + "/chat_template.jinja"
        if FileManager.default.fileExists(atPath: jinjaPath) {
            guard let data = FileManager.default.contents(atPath: jinjaPath), let text = String(data: data, encoding: .utf8) else {
                return .init(template: nil, problem: "it cannot be read as UTF-8 text", origin: jinjaPath, specialTokens: tokens)
            }
            return .init(template: text, origin: jinjaPath, specialTokens: tokens)
        }
        let origin = path + " (chat_template)"
        guard let json = config, let value = json["chat_template"], !value.isNull else {
            return .init(template: nil, problem: problem, origin: origin, specialTokens: tokens)
        }
        if let text = value.stringValue { return .init(template: text, origin: origin, specialTokens: tokens) }
        if let list = value.arrayValue {
            for item in list where item["name"]?.stringValue == "default" {
                if let text = item["template"]?.stringValue { return .init(template: text, origin: origin, specialTokens: tokens) }
            }
            return .init(
                template: nil, problem: "its chat_template list has no template named \"default\"", origin: origin, specialTokens: tokens)
        }
        return .init(
            template: nil, problem: "its chat_template is \(value.kindDescription), not a string", origin: origin, specialTokens: tokens)
    }

    /// The special tokens a configuration names: a string, or an AddedToken object's `content`;
    /// null removes one.
    static func read(specialTokens json: JSON, into tokens: inout [String: String]) {
        for name in ["bos_token", "eos_token", "unk_token", "pad_token"] {
            guard let value = json[name] else { continue }
            if let text = value.stringValue ?? value["content"]?.stringValue {
                tokens[name] = text
            } else if value.isNull {
                tokens[name] = nil
            }
        }
    }

    /// The texts of a tokenizer's BOS and EOS ids, for directories whose configuration names none.
    static func tokenTexts(_ tokenizer: Tokenizer?) -> [String: String] {
        var tokens: [String: String] = [:]
        if let t = tokenizer {
            if let id = t.bos, let text = t.piece(id) { tokens["bos_token"] = text }
            if let id = t.eos, let text = t.piece(id) { tokens["eos_token"] = text }
        }
        return tokens
    }
}
