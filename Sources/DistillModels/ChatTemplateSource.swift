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

    /// From `directory/tokenizer_config.json`; `fallback` gives the special tokens' texts when the
    /// file does not (the tokenizer's own BOS and EOS).
    static func huggingFace(directory: String, fallback: [String: String]) -> ChatTemplateSource {
        let path = directory + "/tokenizer_config.json"
        let origin = path + " (chat_template)"
        guard FileManager.default.fileExists(atPath: path) else { return .init(template: nil, origin: origin, specialTokens: fallback) }
        let json: JSON
        do {
            json = try HuggingFaceDirectory.readJSON(path)
        } catch {
            return .init(template: nil, problem: "\(error)", origin: origin, specialTokens: fallback)
        }
        var tokens = fallback
        for name in ["bos_token", "eos_token", "unk_token", "pad_token"] {
            guard let value = json[name] else { continue }
            if let text = value.stringValue ?? value["content"]?.stringValue {
                tokens[name] = text
            } else if value.isNull {
                tokens[name] = nil
            }
        }
        guard let value = json["chat_template"], !value.isNull else { return .init(template: nil, origin: origin, specialTokens: tokens) }
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
