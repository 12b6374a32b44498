import DistillJSON
import DistillModels
import DistillProtocol
import DistillStore
import DistillTemplate

/// One model's way of turning an example into the context it reads (`params.prompt`): the input
/// and a separator, a prompt template, or the model's own chat template. Made per model, because
/// teacher and students may have different chat templates; made before any model runs, so a model
/// without a chat template, or one using a construct distilld does not render, is refused first.
struct PromptRenderer {
    let format: PromptFormat
    let chat: ChatTemplate?
    let specialTokens: [String: String]
    let modelName: String
    let origin: String
    /// The request member the format came from ("params.prompt").
    let field: String

    init(_ format: PromptFormat, model: LanguageModel, name: String, field: String = "params.prompt") throws {
        self.format = format
        self.modelName = name
        self.field = field
        specialTokens = model.chat.specialTokens
        origin = model.chat.origin
        guard format.kind == .chat else {
            chat = nil
            return
        }
        guard let source = model.chat.template else {
            let why = model.chat.problem.map { " (\(model.chat.origin): \($0))" } ?? ""
            throw ResponseError.invalidParams(
                field: field + ".chat",
                "model '\(name)' has no chat template\(why); "
                    + "give params.prompt.separator or params.prompt.template to format its prompts instead",
                extra: [("model", JSON(name))])
        }
        do {
            chat = try ChatTemplate(source)
        } catch {
            throw Self.refusal(error, model: name, origin: model.chat.origin, field: field + ".chat")
        }
    }

    /// A template error as -32602 on `params.prompt.chat`, naming the model, the construct or the
    /// template's own message, and the template's line.
    static func refusal(_ e: TemplateError, model: String, origin: String, field: String) -> ResponseError {
        let what: String
        var extra: [(String, JSON)] = [("model", JSON(model)), ("line", JSON(e.line))]
        switch e.kind {
        case .unsupported(let construct):
            what =
                "uses \(construct) at line \(e.line), which distilld's template renderer does not support"
                + (e.message.isEmpty ? "" : " (\(e.message))")
            extra.append(("construct", JSON(construct)))
        case .raised:
            what = "refused the conversation at line \(e.line): \(e.message)"
        case .syntax:
            what = "cannot be read: line \(e.line): \(e.message)"
        case .evaluation:
            what = "failed at line \(e.line): \(e.message)"
        }
        return .invalidParams(field: field, "model '\(model)''s chat template (\(origin)) \(what)", extra: extra)
    }

    /// Whether the context's ids get the tokenizer's special tokens: a rendered chat already holds
    /// its own as text, so never; otherwise as the model reference says.
    func addSpecial(_ modelDefault: Bool) -> Bool { format.kind == .chat ? false : modelDefault }

    /// The context text for one example as the side reading `input` sees it.
    func context(input: String, full: String, simplified: String, id: String) throws -> String {
        switch format.kind {
        case .separator: return input + format.separator
        case .template: return format.template!.render(input: input, full: full, simplified: simplified, id: id)
        case .chat: return try renderChat(user: input, example: id)
        }
    }

    func context(_ e: Example, readsFull: Bool) throws -> String {
        try context(input: readsFull ? e.full : e.simplified, full: e.full, simplified: e.simplified, id: e.id)
    }

    /// The chat template rendered with the system message (when given) and `user` as the user's
    /// message, with the generation prompt, as transformers' `apply_chat_template` renders it.
    func renderChat(user: String, example: String? = nil) throws -> String {
        guard let chat else { preconditionFailure("not a chat format") }
        var messages: [(role: String, content: String)] = []
        if let system = format.system { messages.append(("system", system)) }
        messages.append(("user", user))
        do {
            return try chat.render(
                ChatTemplate.chatVariables(messages: messages, addGenerationPrompt: true, specialTokens: specialTokens))
        } catch {
            let refusal = Self.refusal(error, model: modelName, origin: origin, field: field + ".chat")
            guard let example else { throw refusal }
            let data = refusal.data ?? JSON.object()
            data["example"] = JSON(example)
            throw ResponseError(code: refusal.code, message: refusal.message + " (example '\(example)')", data: data)
        }
    }
}
