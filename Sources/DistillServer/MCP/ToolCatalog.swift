import DistillJSON
import DistillProtocol

/// One MCP tool: a method of the method table, described for an agent, with the schemas of its
/// params and result made standalone.
struct MCPTool: Sendable {
    let description: ToolDescription
    /// The params schema without `workDoneToken` (MCP asks for progress in `_meta` instead).
    let inputSchema: JSON
    let outputSchema: JSON
    /// The method's result is not an object, which `structuredContent` must be: it goes under `result`.
    let wrapsResult: Bool

    var name: String { description.name }
    var method: String { description.method }

    var json: JSON {
        [
            "name": JSON(name), "title": JSON(description.title), "description": JSON(description.description),
            "inputSchema": inputSchema, "outputSchema": outputSchema,
            "annotations": [
                "title": JSON(description.title), "readOnlyHint": JSON(description.readOnly),
                "destructiveHint": JSON(description.destructive), "openWorldHint": false,
            ],
        ]
    }
}

/// The tools `tools/list` offers, built once from the method table, `ToolDescription.all` and
/// `Protocol/schemas`, so a method gains a tool with one description and loses none by drifting.
enum ToolCatalog {
    struct Built: Sendable {
        let tools: [MCPTool]
        /// Why a described method is not offered (no such method in this build, a schema file
        /// missing or unreadable): logged when a session first lists the tools, and checked by a test.
        let skipped: [String]
    }

    static let built: Built = build()
    /// The tools as `tools/list` gives them: built once, then only read (each reply wraps it).
    static let listing: JSON = JSON.array(built.tools.map(\.json))
    static let byName: [String: MCPTool] = Dictionary(built.tools.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })

    /// `Protocol/schemas` file name of a method's params or result (`distill.score.result.json`).
    static func schemaFile(_ method: String, _ part: String) -> String {
        method.replacing("/", with: ".") + ".\(part).json"
    }

    static func build() -> Built {
        var tools: [MCPTool] = []
        var skipped: [String] = []
        for description in ToolDescription.all {
            let method = description.method
            guard MethodTable.lookup(method) != nil else {
                skipped.append("\(method): not a method of this build")
                continue
            }
            let paramsFile = schemaFile(method, "params")
            let resultFile = schemaFile(method, "result")
            guard SchemaInliner.has(paramsFile), SchemaInliner.has(resultFile) else {
                skipped.append("\(method): Protocol/schemas has no \(SchemaInliner.has(paramsFile) ? resultFile : paramsFile)")
                continue
            }
            do {
                let input = withoutWorkDoneToken(try SchemaInliner.standalone(paramsFile))
                let output = try SchemaInliner.standalone(resultFile)
                let wraps = output["type"]?.stringValue != "object"
                tools.append(
                    MCPTool(
                        description: description, inputSchema: input, outputSchema: wraps ? wrapped(output) : output,
                        wrapsResult: wraps))
            } catch {
                skipped.append("\(method): \(error)")
            }
        }
        return Built(tools: tools, skipped: skipped)
    }

    static func withoutWorkDoneToken(_ schema: JSON) -> JSON {
        guard let members = schema.members else { return schema }
        return JSON.object(
            members.map { key, value in
                guard key == "properties", let properties = value.members else { return (key, value) }
                return (key, JSON.object(properties.filter { $0.key != "workDoneToken" }.map { ($0.key, $0.value) }))
            })
    }

    /// An object schema with the result under `result`.
    static func wrapped(_ schema: JSON) -> JSON {
        var inner = schema.members ?? []
        inner.removeAll { $0.key == "$schema" }
        return [
            "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "additionalProperties": false,
            "required": ["result"], "properties": ["result": JSON.object(inner.map { ($0.key, $0.value) })],
        ]
    }
}
