import DistillJSON
import DistillSchemas

/// Turns a schema of `Protocol/schemas` into one that stands alone: every `$ref` replaced by the
/// schema it names, wherever that lives, so an MCP client needs neither the other files nor a
/// `$ref` resolver (several agents' tool-schema converters have none).
///
/// A `$ref` with only annotations beside it (`description`, `title`, ...) becomes the named
/// schema with those annotations; one with assertions beside it becomes
/// `{"allOf": [named], ...assertions}`, which is what `$ref` with siblings means in draft
/// 2020-12 (merging the keywords instead would change what `additionalProperties` sees).
/// `$id`, `$schema` and `$defs` go: nothing refers to them once the references are inlined,
/// and the root says `$schema` once.
public enum SchemaInliner {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Keywords that only annotate: kept beside a referenced schema without changing its meaning.
    static let annotations: Set<String> = [
        "title", "description", "$comment", "default", "examples", "deprecated", "readOnly", "writeOnly",
    ]
    static let dropped: Set<String> = ["$id", "$schema", "$defs"]
    /// No schema here nests references this deep; a cycle would.
    static let maximumDepth = 64

    /// The parsed schema files, by file name.
    static let documents: [String: JSON] = ProtocolSchemas.files.compactMapValues { try? JSON.parse($0) }

    /// Whether `Protocol/schemas` has this file (`distill.score.params.json`).
    public static func has(_ file: String) -> Bool { documents[file] != nil }

    /// `file` with every reference inlined, `$schema` (2020-12) at its root.
    public static func standalone(_ file: String) throws -> JSON {
        guard let document = documents[file] else { throw Failure(description: "no schema file \(file)") }
        let schema = try inline(document, file: file, depth: 0)
        guard let members = schema.members else { return schema }
        return JSON.object([("$schema", JSON("https://json-schema.org/draft/2020-12/schema"))] + members)
    }

    static func inline(_ node: JSON, file: String, depth: Int) throws -> JSON {
        guard depth < maximumDepth else { throw Failure(description: "$ref nesting deeper than \(maximumDepth) in \(file): a cycle?") }
        if let items = node.arrayValue {
            return JSON.array(try items.map { try inline($0, file: file, depth: depth) })
        }
        guard let members = node.members else { return node }
        var rest: [(String, JSON)] = []
        for (key, value) in members where !dropped.contains(key) && key != "$ref" {
            // Walked as schemas all the way down: no property of ours is named like a keyword.
            rest.append((key, try inline(value, file: file, depth: depth)))
        }
        guard let reference = node["$ref"]?.stringValue else { return JSON.object(rest) }
        let (target, targetFile) = try resolve(reference, from: file)
        let named = try inline(target, file: targetFile, depth: depth + 1)
        if rest.isEmpty { return named }
        if rest.allSatisfy({ annotations.contains($0.0) }), let namedMembers = named.members {
            let overridden = Set(rest.map(\.0))
            return JSON.object(namedMembers.filter { !overridden.contains($0.key) }.map { ($0.key, $0.value) } + rest)
        }
        return JSON.object([("allOf", JSON.array([named]))] + rest)
    }

    /// The schema a reference names (`store.json#/$defs/x`, `#/$defs/x`, `common.json`) and the
    /// file it lives in, which its own relative references are read against.
    static func resolve(_ reference: String, from file: String) throws -> (JSON, String) {
        let parts = reference.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)
        let targetFile = parts[0].isEmpty ? file : String(parts[0])
        guard var node = documents[targetFile] else {
            throw Failure(description: "\(file): $ref \(reference) names no file of Protocol/schemas")
        }
        let pointer = parts.count > 1 ? String(parts[1]) : ""
        for token in pointer.split(separator: "/", omittingEmptySubsequences: true) {
            let key = String(token).replacing("~1", with: "/").replacing("~0", with: "~")
            let current = node
            guard let next = current[key] ?? Int(key).flatMap({ current[$0] }) else {
                throw Failure(description: "\(file): $ref \(reference) names nothing")
            }
            node = next
        }
        return (node, targetFile)
    }
}
