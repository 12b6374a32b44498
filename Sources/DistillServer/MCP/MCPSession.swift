import DistillJSON
import DistillProtocol
import DistillSync

/// Whether a session speaks MCP, and the revision its handshake fixed.
///
/// A session becomes an MCP session when its client opens as an MCP client does: `initialize`
/// with `protocolVersion` and `clientInfo` (the handshake revisions), `server/discover`, or a
/// request naming its revision in `_meta` (the stateless one). `distilld --mcp` and
/// `distilld connect --mcp` make it one from the start.
final class MCPSessionState: Sendable {
    private struct State {
        var active: Bool
        var handshake: String?
    }

    private let state: Mutex<State>

    init(forced: Bool) { state = Mutex(State(active: forced, handshake: nil)) }

    var isActive: Bool { state.withLock { $0.active } }
    var handshake: String? { state.withLock { $0.handshake } }

    func activate() { state.withLock { $0.active = true } }

    /// Records the revision `initialize` agreed on; false when a handshake was already made.
    func shake(_ version: String) -> Bool {
        state.withLock { state in
            guard state.handshake == nil else { return false }
            state.active = true
            state.handshake = version
            return true
        }
    }
}

/// MCP's requests, and how each is served: from MCP's own tables, or by running a distilld
/// method in the session's usual order (with its cancellation and progress) and rewriting the
/// reply.
extension Session {
    static let mcpMethods: Set<String> = [
        "initialize", "server/discover", "ping", "tools/list", "tools/call", "resources/list", "resources/read",
        "resources/templates/list",
    ]

    /// Serves `method` when it is an MCP request of an MCP session (or one that makes the session
    /// one); false when it is a distilld method for the usual table.
    func routeMCP(id: RequestID, method: String, params: JSON?, reply: @escaping @Sendable (JSON?) -> Void) -> Bool {
        let metaVersion = params?["_meta"]?[MCPVersion.versionKey]
        let opensMCP: Bool
        switch method {
        case "server/discover": opensMCP = true
        case "initialize": opensMCP = params?["protocolVersion"]?.stringValue != nil && params?["clientInfo"]?.isObject == true
        default: opensMCP = metaVersion != nil
        }
        if opensMCP { mcp.activate() }
        guard mcp.isActive, Self.mcpMethods.contains(method) else { return false }
        let fail: @Sendable (ResponseError) -> Void = { [self] error in
            replyInOrder(OutgoingMessage.error(id: id.json, error), reply)
        }
        if method == "initialize" {
            initializeMCP(id: id, params: params, reply: reply)
            return true
        }
        let era: MCPEra
        if let version = mcp.handshake {
            era = .handshake(version)
        } else if let metaVersion {
            guard let version = metaVersion.stringValue, MCPVersion.stateless.contains(version) else {
                fail(MCPVersion.unsupported(metaVersion.stringValue ?? metaVersion.serializedString()))
                return true
            }
            era = .stateless(version)
        } else if method == "server/discover" || method == "ping" {
            era = .stateless(MCPVersion.stateless.last!)
        } else {
            fail(
                .invalidParams(
                    field: "params._meta",
                    "an MCP request needs \(MCPVersion.versionKey) in params._meta (2026-07-28), or an initialize handshake first"
                ))
            return true
        }
        let answer: @Sendable (JSON) -> Void = { [self] result in replyInOrder(OutgoingMessage.result(id: id.json, result), reply) }
        switch method {
        case "server/discover":
            answer(MCPResults.discover(era: era))
        case "ping":
            answer(era.finish(JSON.object()))
        case "tools/list":
            if let cursor = params?["cursor"], !cursor.isNull {
                fail(.invalidParams(field: "params.cursor", "no such cursor: tools/list gives every tool in one page"))
                return true
            }
            if !ToolCatalog.built.skipped.isEmpty {
                server.log(.debug, "MCP tools not offered: \(ToolCatalog.built.skipped.joined(separator: "; "))")
            }
            answer(era.finish(["tools": ToolCatalog.listing], cacheable: true))
        case "tools/call":
            callTool(id: id, params: params, era: era, reply: reply, fail: fail)
        case "resources/list":
            computeInOrder({ [self] in OutgoingMessage.result(id: id.json, era.finish(listResources(), cacheable: true)) }, reply)
        case "resources/templates/list":
            answer(era.finish(["resourceTemplates": JSON.array(Self.resourceTemplates)], cacheable: true))
        case "resources/read":
            readResource(id: id, params: params, era: era, reply: reply, fail: fail)
        default:
            return false
        }
        return true
    }

    /// MCP's notifications; false for any other, which the usual table handles.
    func routeMCPNotification(method: String, params: JSON?) -> Bool {
        switch method {
        case "distilld/mcp":
            // `distilld connect --mcp` says so before forwarding its client.
            mcp.activate()
        case "notifications/initialized":
            break
        case "notifications/cancelled":
            guard let raw = params?["requestId"], let id = RequestID(raw) else {
                server.log(.warning, "notifications/cancelled ignored: params.requestId is not an id")
                return true
            }
            // The request ends with -32800, which the MCP reply drops: MCP answers a cancelled request with nothing.
            cancel(id)
        case "notifications/progress", "notifications/roots/list_changed":
            break
        default:
            return false
        }
        return true
    }

    private func initializeMCP(id: RequestID, params: JSON?, reply: @escaping @Sendable (JSON?) -> Void) {
        guard let requested = params?["protocolVersion"]?.stringValue else {
            replyInOrder(
                OutgoingMessage.error(id: id.json, .invalidParams(field: "params.protocolVersion", "required: the MCP revision asked for")),
                reply)
            return
        }
        let version = MCPVersion.negotiate(requested)
        guard mcp.shake(version) else {
            replyInOrder(OutgoingMessage.error(id: id.json, .invalidRequest("initialize was already received")), reply)
            return
        }
        let client = params?["clientInfo"]?["name"]?.stringValue ?? "an unnamed client"
        server.log(.info, "MCP session with \(client): asked for \(requested), speaking \(version)")
        replyInOrder(OutgoingMessage.result(id: id.json, MCPResults.initialize(version: version)), reply)
    }

    private func callTool(
        id: RequestID, params: JSON?, era: MCPEra, reply: @escaping @Sendable (JSON?) -> Void,
        fail: @Sendable (ResponseError) -> Void
    ) {
        guard let name = params?["name"]?.stringValue else {
            fail(.invalidParams(field: "params.name", "required: the name of a tool from tools/list"))
            return
        }
        guard let tool = ToolCatalog.byName[name] else {
            fail(.invalidParams(field: "params.name", "Unknown tool: \(name)", extra: [("tool", JSON(name))]))
            return
        }
        let arguments = params?["arguments"]
        if let arguments, !arguments.isObject, !arguments.isNull {
            fail(.invalidParams(field: "params.arguments", "must be an object, got \(arguments.kindDescription)"))
            return
        }
        // Progress is asked for in `_meta`; an LSP token among the arguments would send `$/progress` instead.
        let inner = JSON.object((arguments?.members ?? []).filter { $0.key != "workDoneToken" }.map { ($0.key, $0.value) })
        let charts = server.mcpCharts
        startRequest(id: id, method: tool.method, params: inner, mcpProgressToken: Self.progressToken(params)) { response in
            guard let response else { return reply(nil) }
            if response["error"]?["code"]?.intValue == ErrorCode.invalidRequest.rawValue {
                // Refused before it ran (an id already in flight, a session shutting down): the
                // call itself was wrong, which is a protocol error.
                return reply(response)
            }
            if let result = response["result"] {
                let links = tool.method == "distill/explain" ? charts.add(result["charts"]) : []
                let structured: JSON = tool.wrapsResult ? ["result": result] : result
                reply(OutgoingMessage.result(id: id.json, era.finish(MCPResults.toolResult(structured, links: links))))
            } else if let error = response["error"], error["code"]?.intValue != ErrorCode.requestCancelled.rawValue {
                // The method refused or failed: a tool result the model can read, not a protocol error.
                let message = error["message"]?.stringValue ?? "the call failed"
                reply(OutgoingMessage.result(id: id.json, era.finish(MCPResults.toolError(message))))
            } else {
                reply(nil)
            }
        }
    }

    /// `_meta.progressToken`, when it is a string or an integer.
    static func progressToken(_ params: JSON?) -> JSON? {
        guard let token = params?["_meta"]?["progressToken"], token.kind == .string || token.kind == .integer else { return nil }
        return token
    }

    static let resourceTemplates: [JSON] = ResourceURI.entryTypes.map { type in
        [
            "uriTemplate": JSON(ResourceURI.scheme + type + "/{name}"), "name": JSON(type),
            "title": JSON("A loaded \(type)"), "description": JSON("The info of the \(type) loaded under this name (\(type)/info)."),
            "mimeType": "application/json",
        ]
    }

    /// Every loaded teacher, dataset and model, then the charts explain drew.
    private func listResources() -> JSON {
        let entries: [JSON] = server.registry.list().map { entry in
            [
                "uri": JSON(ResourceURI.entry(entry.type.rawValue, entry.name)), "name": JSON(entry.name),
                "title": JSON("\(entry.type.rawValue) \(entry.name)"),
                "description": JSON("The loaded \(entry.type.rawValue) '\(entry.name)': its \(entry.type.rawValue)/info."),
                "mimeType": "application/json",
            ]
        }
        let charts: [JSON] = server.mcpCharts.all.map {
            [
                "uri": JSON($0.uri), "name": JSON($0.name), "description": JSON($0.description), "mimeType": "image/svg+xml",
                "size": JSON($0.svg.utf8.count),
            ]
        }
        return ["resources": JSON.array(entries + charts)]
    }

    private func readResource(
        id: RequestID, params: JSON?, era: MCPEra, reply: @escaping @Sendable (JSON?) -> Void,
        fail: @escaping @Sendable (ResponseError) -> Void
    ) {
        guard let uri = params?["uri"]?.stringValue else {
            fail(.invalidParams(field: "params.uri", "required: a resource URI from resources/list"))
            return
        }
        let notFound = ResponseError(
            code: era.isStateless ? .invalidParams : .resourceNotFound, message: "Resource not found: \(uri)",
            data: ["uri": JSON(uri), "field": "params.uri"])
        if uri.hasPrefix(ChartStore.scheme) {
            let charts = server.mcpCharts
            computeInOrder(
                {
                    guard let chart = charts.chart(uri) else { return OutgoingMessage.error(id: id.json, notFound) }
                    return OutgoingMessage.result(
                        id: id.json,
                        era.finish(MCPResults.resourceText(uri: uri, mimeType: "image/svg+xml", text: chart.svg), cacheable: true))
                }, reply)
            return
        }
        guard let (type, name) = ResourceURI.parseEntry(uri) else {
            fail(notFound)
            return
        }
        // The entry's info, read in the session's order like any `teacher/info`.
        startRequest(id: id, method: "\(type)/info", params: ["name": JSON(name)]) { response in
            guard let response else { return reply(nil) }
            if let result = response["result"] {
                let text = MCPResults.resourceText(uri: uri, mimeType: "application/json", text: result.serializedString())
                reply(OutgoingMessage.result(id: id.json, era.finish(text, cacheable: true)))
            } else if response["error"]?["code"]?.intValue == ErrorCode.requestCancelled.rawValue {
                reply(nil)
            } else {
                reply(OutgoingMessage.error(id: id.json, notFound))
            }
        }
    }
}
