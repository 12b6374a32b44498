import DistillJSON

/// A value read out of a request together with its JSON path, so that every
/// complaint about it names the field: `params.loss.temperature`,
/// `params.students.A.probs[0][2]`.
public struct Field: Sendable {
    public let json: JSON
    public let path: String

    public init(_ json: JSON, path: String) {
        self.json = json
        self.path = path
    }

    /// The params of a request as an object field; absent or null params read as `{}`.
    public static func params(_ params: JSON?) throws -> Field {
        guard let params, !params.isNull else { return Field(JSON.object(), path: "params") }
        guard params.isObject else {
            throw ResponseError.invalidParams(field: "params", "this method takes named params (an object), got \(params.kindDescription)")
        }
        return Field(params, path: "params")
    }

    public func fail(_ message: String, extra: [(String, JSON)] = []) -> ResponseError {
        .invalidParams(field: path, message, extra: extra)
    }

    public func child(_ key: String) -> Field? {
        guard let v = json[key], !v.isNull else { return nil }
        return Field(v, path: path + "." + key)
    }

    public func element(_ index: Int) -> Field? {
        guard let v = json[index] else { return nil }
        return Field(v, path: path + "[\(index)]")
    }

    public func required(_ key: String) throws -> Field {
        guard let f = child(key) else { throw ResponseError.invalidParams(field: path + "." + key, "is required") }
        return f
    }

    public func object() throws -> Field {
        guard json.isObject else { throw fail("must be an object, got \(json.kindDescription)") }
        return self
    }

    public func string() throws -> String {
        guard let s = json.stringValue else { throw fail("must be a string, got \(json.kindDescription)") }
        return s
    }

    public func nonEmptyString() throws -> String {
        let s = try string()
        guard !s.isEmpty else { throw fail("must not be empty") }
        return s
    }

    public func bool() throws -> Bool {
        guard let b = json.boolValue else { throw fail("must be true or false, got \(json.kindDescription)") }
        return b
    }

    public func int(min: Int? = nil, max: Int? = nil) throws -> Int {
        guard let i = json.intValue else { throw fail("must be an integer, got \(json.kindDescription)") }
        if let min, i < min { throw fail("must be at least \(min), got \(i)") }
        if let max, i > max { throw fail("must be at most \(max), got \(i)") }
        return i
    }

    /// A finite number (JSON numbers are finite; the "Infinity" spellings are refused here).
    public func double() throws -> Double {
        guard json.isNumber, let d = json.doubleValue else { throw fail("must be a number, got \(json.kindDescription)") }
        return d
    }

    public func array() throws -> [Field] {
        guard let items = json.arrayValue else { throw fail("must be an array, got \(json.kindDescription)") }
        return items.enumerated().map { Field($1, path: path + "[\($0)]") }
    }

    public func members() throws -> [(key: String, value: Field)] {
        guard let m = json.members else { throw fail("must be an object, got \(json.kindDescription)") }
        return m.map { ($0.key, Field($0.value, path: path + "." + $0.key)) }
    }

    /// A string drawn from a fixed set; the error lists the allowed values.
    public func oneOf(_ allowed: [String]) throws -> String {
        let s = try string()
        guard allowed.contains(s) else {
            throw fail(
                "unknown value \"\(s)\"; expected one of \(allowed.joined(separator: ", "))",
                extra: [("allowed", JSON.array(allowed))])
        }
        return s
    }

    /// Rejects members that are not in `known`, so that a misspelt option is an error, not silently ignored.
    public func rejectUnknownKeys(_ known: Set<String>) throws {
        for key in json.keys where !known.contains(key) {
            throw ResponseError.invalidParams(
                field: path + "." + key, "unknown field; expected one of \(known.sorted().joined(separator: ", "))")
        }
    }
}
