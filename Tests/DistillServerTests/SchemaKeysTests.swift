import DistillJSON
import DistillProtocol
import DistillServer
import Foundation
import Testing

/// The request types and Protocol/schemas describe the same methods with the same params, so the
/// code and the specification cannot drift apart.
struct SchemaKeysTests {
    /// Protocol/schemas, found from this file: Tests/DistillServerTests/ is two levels below the root.
    static let schemas = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Protocol/schemas")

    /// The schema file's base name for a method: `distill/score` → `distill.score`.
    static func baseName(_ method: String) -> String { method.replacingOccurrences(of: "/", with: ".") }

    static func schema(_ name: String) throws -> JSON {
        let data = try Data(contentsOf: schemas.appendingPathComponent(name))
        return try JSON.parse([UInt8](data))
    }

    @Test func everyTypedRequestAcceptsExactlyTheKeysOfItsParamsSchema() throws {
        #expect(MethodTable.requests.count >= 18)
        for method in MethodTable.requests {
            let schema = try Self.schema(Self.baseName(method.method) + ".params.json")
            // A schema without `properties` takes no member.
            let properties = Set(schema["properties"]?.keys ?? [])
            #expect(properties == method.keys, "\(method.method): keys differ from the params schema's properties")
        }
    }

    @Test func everyMethodHasAParamsAndAResultSchema() {
        for method in MethodTable.requests {
            for part in ["params", "result"] {
                let name = Self.baseName(method.method) + ".\(part).json"
                #expect(
                    FileManager.default.fileExists(atPath: Self.schemas.appendingPathComponent(name).path),
                    "\(method.method) has no \(name)")
            }
        }
    }

    @Test func noSchemaDescribesAMethodTheTableLacks() throws {
        let known = Set(MethodTable.requests.map { Self.baseName($0.method) })
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.schemas.path)
        let described = files.compactMap { file -> String? in
            for suffix in [".params.json", ".result.json"] where file.hasSuffix(suffix) {
                return String(file.dropLast(suffix.count))
            }
            return nil
        }
        #expect(!described.isEmpty)
        for method in described {
            #expect(known.contains(method), "Protocol/schemas describes \(method), which MethodTable does not list")
        }
    }

    /// `distill/score` reads convention names before DistillAnalysis runs them: its list must be
    /// the one `initialize` announces (which is DistillAnalysis's).
    @Test func scoreAcceptsExactlyTheAnnouncedConventions() {
        let client = TestClient()
        let announced = client.request("initialize", ["capabilities": [:]])["result"]?["capabilities"]?["conventions"]
        #expect(announced?.arrayValue?.compactMap(\.stringValue) == ScoreRequest.conventionNames)
    }
}
