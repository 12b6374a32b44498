/// A Jinja template as Hugging Face chat templates use the language, read once and rendered
/// many times: the subset the common chat templates need (ChatML, Llama 2, 3 and 3.1, Mistral,
/// Zephyr, Gemma, Phi-3), with the whitespace rules transformers sets. Anything else is refused
/// when the template is read, naming the construct and its line, never at a crash.
///
/// Pure Swift over Unicode scalars; no Foundation. A value type, safe to share.
public struct ChatTemplate: Sendable {
    let nodes: [Node]
    public let source: String

    /// Reads `source`; throws `TemplateError` (`.syntax` or `.unsupported`) with the line at fault.
    public init(_ source: String) throws(TemplateError) {
        self.source = source
        nodes = try TemplateParser.parse(source)
    }

    /// The text the template gives for `variables`. Throws `TemplateError`: `.raised` when the
    /// template calls `raise_exception`, `.evaluation` or `.unsupported` for what it cannot compute.
    public func render(_ variables: [String: TemplateValue]) throws(TemplateError) -> String {
        try render(variables, iterationLimit: TemplateRenderer.maxIterations)
    }

    /// With lower limits than the daemon's, so tests of the limits run in no time.
    func render(
        _ variables: [String: TemplateValue], iterationLimit: Int, outputLimit: Int = TemplateRenderer.maxOutput,
        itemLimit: Int = TemplateRenderer.maxItems, workLimit: Int = TemplateRenderer.maxWork
    ) throws(TemplateError) -> String {
        var renderer = TemplateRenderer(variables: variables)
        renderer.iterationLimit = iterationLimit
        renderer.outputLimit = outputLimit
        renderer.itemLimit = itemLimit
        renderer.workLimit = workLimit
        _ = try renderer.run(nodes)
        return renderer.output
    }

    /// The variables transformers' `apply_chat_template` gives a template: the messages, the
    /// generation prompt flag, no tools or documents, and the special tokens' texts.
    public static func chatVariables(
        messages: [(role: String, content: String)], addGenerationPrompt: Bool, specialTokens: [String: String]
    ) -> [String: TemplateValue] {
        var variables: [String: TemplateValue] = [
            "messages": .list(messages.map { .dict(TemplateDictionary([("role", .string($0.role)), ("content", .string($0.content))])) }),
            "add_generation_prompt": .bool(addGenerationPrompt), "tools": .none, "documents": .none,
        ]
        for (name, text) in specialTokens { variables[name] = .string(text) }
        return variables
    }
}
