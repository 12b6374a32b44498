import DistillJSON

/// Reading JSON Lines files (teachers, paired datasets, input lists): one JSON object per line.
enum JSONLines {
    /// The object a line holds; a line that is not JSON, or holds something other than an
    /// object, is `.badLine` naming the line (and the column jansson gives).
    static func object(_ text: UnsafeRawBufferPointer, path: String, line: Int) throws -> JSON {
        let obj: JSON
        do { obj = try JSON.parse(text) } catch let e as JSONParseError {
            throw fileError(.badLine, path, line: line, numbers: ["column": e.column], "not JSON: \(e.message) (column \(e.column))")
        }
        guard obj.isObject else {
            throw fileError(.badLine, path, line: line, "the line holds \(obj.kindDescription), not an object")
        }
        return obj
    }

    /// An id or a label as text: a string, or an integer written in decimal.
    static func stringOrInteger(_ value: JSON, name: String, path: String, line: Int) throws -> String {
        if let s = value.stringValue { return s }
        if let i = value.intValue { return String(i) }
        throw fileError(.badLine, path, line: line, "'\(name)' is \(value.kindDescription), not a string or integer")
    }
}
