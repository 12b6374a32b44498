import DistillJSON
import Foundation

/// The JSON Schemas of Protocol/schemas: the contract the request and response types keep.
public enum Schemas {
    public static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Protocol/schemas")

    /// The schema file `name` (`initialize.params.json`).
    public static func load(_ name: String) throws -> JSON {
        try JSON.parse(Array(try Data(contentsOf: directory.appendingPathComponent(name))))
    }

    /// The params schema of a method: `teacher/load` → `teacher.load.params.json`.
    public static func params(of method: String) -> String {
        method.replacingOccurrences(of: "/", with: ".") + ".params.json"
    }

    /// The member names a schema's top-level `properties` lists.
    public static func properties(_ name: String) throws -> Set<String> {
        Set(try load(name)["properties"]?.keys ?? [])
    }

    /// The member names a schema's top-level `required` lists.
    public static func required(_ name: String) throws -> Set<String> {
        Set(try load(name)["required"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }
}
