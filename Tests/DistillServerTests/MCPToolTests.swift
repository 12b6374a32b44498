import DistillJSON
import DistillProtocol
import DistillSchemas
import DistillTestSupport
import Foundation
import Testing

@testable import DistillServer

/// The MCP tools are generated from the method table, the description table and Protocol/schemas:
/// these tests keep the three in step, so a new method cannot be forgotten or its tool drift.
struct MCPToolTests {
    @Test func everyMethodIsAToolOrHiddenOnPurpose() {
        let methods = Set(MethodTable.requests.map(\.method))
        let described = Set(ToolDescription.all.map(\.method))
        let neither = methods.subtracting(described).subtracting(ToolDescription.hidden)
        #expect(neither.isEmpty, "methods with neither a ToolDescription nor a place in ToolDescription.hidden: \(neither.sorted())")
        #expect(described.isDisjoint(with: ToolDescription.hidden))
        #expect(Set(ToolDescription.all.map(\.name)).count == ToolDescription.all.count, "two tools share a name")
    }

    /// A described method is offered whenever its schema files exist: the only reason to skip one
    /// is a file not yet written (a method whose schemas are on their way).
    @Test func describedMethodsWithSchemasAreOffered() {
        for reason in ToolCatalog.built.skipped {
            #expect(reason.contains("Protocol/schemas has no"), "\(reason)")
        }
        let offered = Set(ToolCatalog.built.tools.map(\.method))
        for description in ToolDescription.all {
            let method = description.method
            let hasSchemas =
                FileManager.default.fileExists(
                    atPath: Schemas.directory.appendingPathComponent(ToolCatalog.schemaFile(method, "params")).path)
                && FileManager.default.fileExists(
                    atPath: Schemas.directory.appendingPathComponent(ToolCatalog.schemaFile(method, "result")).path)
            #expect(offered.contains(method) == hasSchemas, "\(method)")
        }
    }

    /// The binary carries Protocol/schemas as they are on disk (the build plugin re-embeds them).
    @Test func embeddedSchemasAreTheFilesOnDisk() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Schemas.directory.path).filter { $0.hasSuffix(".json") }
        #expect(Set(ProtocolSchemas.files.keys) == Set(names))
        for name in names {
            let disk = try String(contentsOf: Schemas.directory.appendingPathComponent(name), encoding: .utf8)
            #expect(ProtocolSchemas.files[name] == disk, "\(name)")
        }
    }

    @Test func toolSchemasStandAlone() {
        func references(_ node: JSON) -> Int {
            if let items = node.arrayValue { return items.map(references).reduce(0, +) }
            guard let members = node.members else { return 0 }
            return members.map { ($0.key == "$ref" ? 1 : 0) + references($0.value) }.reduce(0, +)
        }
        #expect(!ToolCatalog.built.tools.isEmpty)
        for tool in ToolCatalog.built.tools {
            #expect(references(tool.inputSchema) == 0, "\(tool.name)")
            #expect(references(tool.outputSchema) == 0, "\(tool.name)")
            #expect(tool.inputSchema["type"]?.stringValue == "object", "\(tool.name): MCP needs an object")
            #expect(tool.outputSchema["type"]?.stringValue == "object", "\(tool.name): structuredContent is an object")
            #expect(tool.inputSchema["properties"]?["workDoneToken"] == nil, "\(tool.name)")
            #expect(tool.name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }, "\(tool.name)")
        }
    }

    /// A `$ref` with assertions beside it keeps them under `allOf`; one with only annotations
    /// becomes the named schema with them.
    @Test func referencesWithSiblingsKeepTheirMeaning() throws {
        let score = try SchemaInliner.standalone("distill.score.params.json")
        #expect(score["$schema"]?.stringValue == "https://json-schema.org/draft/2020-12/schema")
        #expect(score["$id"] == nil && score["$defs"] == nil)
        // teacher.info.result.json is nothing but a $ref beside annotations.
        let info = try SchemaInliner.standalone("teacher.info.result.json")
        #expect(info["type"]?.stringValue == "object")
        #expect(info["title"]?.stringValue == "teacher/info result")
        #expect(info["allOf"] == nil)
        #expect(throws: SchemaInliner.Failure.self) { try SchemaInliner.standalone("no.such.json") }
    }

    @Test func serverVersionIsOne() {
        #expect(MCPResults.serverVersion == DistillServer.version)
        #expect(MCPResults.serverName == DistillServer.name)
    }

    @Test func resourceNamesRoundTrip() {
        for name in ["demo", "pairs two", "ünï/cødé", "a%b", "-._~"] {
            let uri = ResourceURI.entry("teacher", name)
            #expect(!uri.dropFirst(ResourceURI.scheme.count).contains(" "))
            let parsed = ResourceURI.parseEntry(uri)
            #expect(parsed?.type == "teacher" && parsed?.name == name, "\(uri)")
        }
        #expect(ResourceURI.parseEntry("distilld://other/x") == nil)
        #expect(ResourceURI.parseEntry("distilld://teacher/%zz") == nil)
        #expect(ResourceURI.parseEntry("distilld://teacher/") == nil)
    }

    @Test func handshakeNegotiation() {
        #expect(MCPVersion.negotiate("2025-06-18") == "2025-06-18")
        #expect(MCPVersion.negotiate("2025-11-25") == "2025-11-25")
        #expect(MCPVersion.negotiate("2026-07-28") == "2025-11-25")
        #expect(MCPVersion.negotiate("1900-01-01") == "2025-11-25")
        let refusal = MCPVersion.unsupported("1900-01-01")
        #expect(refusal.code.rawValue == -32022)
        #expect(refusal.data?["requested"]?.stringValue == "1900-01-01")
    }
}
