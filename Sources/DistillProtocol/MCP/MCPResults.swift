import DistillJSON

/// The results of MCP's own requests, as distilld fills them in.
public enum MCPResults {
    public static let serverName = "distilld"
    /// Kept equal to `DistillServer.version` by a test (this module cannot see the server's).
    public static let serverVersion = "0.1.0"

    static var serverInfo: JSON {
        ["name": JSON(serverName), "title": "distilld: knowledge-distillation analyses", "version": JSON(serverVersion)]
    }

    /// Tools and resources; neither list announces changes (the tools are fixed for the process,
    /// and loaded entries are listed afresh on each `resources/list`).
    static var capabilities: JSON {
        ["tools": ["listChanged": false], "resources": ["subscribe": false, "listChanged": false]]
    }

    /// Told to the model once, beside the tool descriptions: how the tools fit together.
    public static let instructions = """
        distilld analyses knowledge distillation: a teacher's output distributions against students', \
        with losses in nats. Loaded teachers, datasets and language models are named and shared with \
        every other client of the daemon (a notebook or shell using the same daemon sees what you load, \
        and you see what they loaded: read the resources or call teacher_list). Built-in demo data: \
        teacher_load {"name": "demo", "path": "builtin:demo"}, students {"path": "builtin:demo-student-A"} \
        and {"path": "builtin:demo-student-B"}, dataset_load {"name": "pairs", "path": "builtin:demo"}, \
        training inputs {"path": "builtin:demo-inputs"}. To say which student is closer and why, call \
        distill_explain with two students (its `comparison` sentence answers it) or distill_score for the \
        numbers over all examples. Errors come back as tool results with isError and a message naming \
        the field at fault.
        """

    /// `initialize` (handshake revisions).
    public static func initialize(version: String) -> JSON {
        [
            "protocolVersion": JSON(version), "capabilities": capabilities, "serverInfo": serverInfo,
            "instructions": JSON(instructions),
        ]
    }

    /// `server/discover` (stateless revisions); `era` stamps it.
    public static func discover(era: MCPEra) -> JSON {
        era.finish(
            [
                "supportedVersions": JSON.array(MCPVersion.supported), "capabilities": capabilities,
                "instructions": JSON(instructions),
            ], cacheable: true)
    }

    /// A successful `tools/call`: the method's result as `structuredContent` and, for clients that
    /// read only text, the same JSON as a text block; then links to resources it made.
    public static func toolResult(_ structured: JSON, links: [JSON] = []) -> JSON {
        let text: JSON = ["type": "text", "text": JSON(structured.serializedString())]
        return ["content": JSON.array([text] + links), "structuredContent": structured, "isError": false]
    }

    /// A `tools/call` whose method failed: the message a JSON-RPC client gets, as text, so the
    /// model reads it and can correct its call.
    public static func toolError(_ message: String) -> JSON {
        ["content": JSON.array([["type": "text", "text": JSON(message)]]), "isError": true]
    }

    /// A text block of a resource read.
    public static func resourceText(uri: String, mimeType: String, text: String) -> JSON {
        ["contents": JSON.array([["uri": JSON(uri), "mimeType": JSON(mimeType), "text": JSON(text)]])]
    }
}
