import DistillJSON

/// How a model that reads a dataset sees an example (`params.prompt`), one of three kinds:
///
/// - `{"separator": S}` (the default, S = "\n"): the context is the side's input followed by S.
/// - `{"template": T}`: the context is T with `{input}` (the side's input: the full context for
///   the teacher, the simplified one for a student), `{full}`, `{simplified}` and `{id}` filled
///   in; `{{` and `}}` are literal braces.
/// - `{"chat": true}` or `{"chat": {"system": S}}`: the context is each model's own chat template
///   rendered with the input as the user's message (after a system message S when given) and the
///   generation prompt; the rendered text holds its special tokens as text, so it is tokenised
///   without adding any (as transformers' `apply_chat_template(tokenize=True)` does).
///
/// The target follows the context directly and is tokenised without special tokens, so every model
/// sees the same target tokens; separator and template contexts get the model's special tokens
/// (`addSpecial` of the model). Echoed in the result as given, with `kind`.
public struct PromptFormat: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case separator, template, chat
    }

    public var kind: Kind
    /// Between context and target (kind separator; "\n" otherwise, unused).
    public var separator: String
    /// The parsed template (kind template).
    public var template: PromptTemplate?
    /// The system message (kind chat with `{"system": …}`).
    public var system: String?
    /// What was given, for the echo: `true` or the object (kind chat).
    var chatGiven: JSON?

    public static let keys: Set<String> = ["separator", "template", "chat"]

    public init(separator: String = "\n") {
        kind = .separator
        self.separator = separator
    }

    public init(template: PromptTemplate) {
        kind = .template
        separator = "\n"
        self.template = template
    }

    public init(chatSystem system: String?) {
        kind = .chat
        separator = "\n"
        self.system = system
        chatGiven = system.map { JSON.object([("system", JSON($0))]) } ?? JSON(true)
    }

    public init(_ field: Field?) throws {
        guard let field else {
            self.init()
            return
        }
        try field.object().rejectUnknownKeys(Self.keys)
        let given = Self.keys.sorted().filter { field.child($0) != nil }
        if given.count > 1 {
            throw field.fail("gives \(given.joined(separator: " and ")); give one of separator, template and chat")
        }
        if let t = field.child("template") {
            self.init(template: try PromptTemplate(try t.string(), field: t.path))
        } else if let c = field.child("chat") {
            if c.json.isObject {
                try c.rejectUnknownKeys(["system"])
                self.init(chatSystem: try c.child("system")?.string())
                chatGiven = c.json
            } else {
                guard try c.bool() else {
                    throw c.fail("must be true or {\"system\": TEXT}; to read without a chat template, give separator or template")
                }
                self.init(chatSystem: nil)
            }
        } else {
            self.init(separator: try field.child("separator")?.string() ?? "\n")
        }
    }

    /// The members the result's `prompt` object echoes: what was given, and `kind`. A separator
    /// is echoed as it was before the other kinds existed, without `kind` (its absence means
    /// separator), so replies to requests that worked before are unchanged.
    public var echo: [(String, JSON)] {
        switch kind {
        case .separator: [("separator", JSON(separator))]
        case .template: [("kind", "template"), ("template", JSON(template?.source ?? ""))]
        case .chat: [("kind", "chat"), ("chat", chatGiven ?? JSON(true))]
        }
    }

    public static func == (a: PromptFormat, b: PromptFormat) -> Bool {
        a.kind == b.kind && a.separator == b.separator && a.template == b.template && a.system == b.system
    }
}

/// A prompt template (`params.prompt.template`): literal text with `{input}`, `{full}`,
/// `{simplified}` and `{id}` placeholders; `{{` and `}}` stand for literal braces. Checked when
/// the request is read, so an unknown placeholder or a lone brace is refused before any model runs.
public struct PromptTemplate: Sendable, Equatable {
    public enum Placeholder: String, Sendable, CaseIterable {
        case input, full, simplified, id
    }

    public enum Part: Sendable, Equatable {
        case text(String)
        case placeholder(Placeholder)
    }

    public let source: String
    public let parts: [Part]

    public init(_ source: String, field: String) throws {
        self.source = source
        var parts: [Part] = []
        var text = String.UnicodeScalarView()
        let s = Array(source.unicodeScalars)
        var i = 0
        func fail(_ message: String) -> ResponseError { .invalidParams(field: field, message) }
        while i < s.count {
            let c = s[i]
            if c == "{" {
                if i + 1 < s.count, s[i + 1] == "{" {
                    text.append("{")
                    i += 2
                    continue
                }
                guard let close = s[(i + 1)...].firstIndex(where: { $0 == "}" || $0 == "{" }), s[close] == "}" else {
                    throw fail("the '{' at character \(i) opens a placeholder that is never closed; write {{ for a literal brace")
                }
                let name = String(String.UnicodeScalarView(s[(i + 1)..<close]))
                guard let placeholder = Placeholder(rawValue: name) else {
                    let known = Placeholder.allCases.map { "{\($0.rawValue)}" }.joined(separator: ", ")
                    throw fail("unknown placeholder {\(name)}; the placeholders are \(known) (write {{ and }} for literal braces)")
                }
                if !text.isEmpty { parts.append(.text(String(text))) }
                text = String.UnicodeScalarView()
                parts.append(.placeholder(placeholder))
                i = close + 1
            } else if c == "}" {
                guard i + 1 < s.count, s[i + 1] == "}" else {
                    throw fail("the '}' at character \(i) closes no placeholder; write }} for a literal brace")
                }
                text.append("}")
                i += 2
            } else {
                text.append(c)
                i += 1
            }
        }
        if !text.isEmpty { parts.append(.text(String(text))) }
        self.parts = parts
    }

    /// The text for one example and side.
    public func render(input: String, full: String, simplified: String, id: String) -> String {
        var out = ""
        for part in parts {
            switch part {
            case .text(let t): out += t
            case .placeholder(.input): out += input
            case .placeholder(.full): out += full
            case .placeholder(.simplified): out += simplified
            case .placeholder(.id): out += id
            }
        }
        return out
    }
}
