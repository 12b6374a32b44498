import DistillJSON
import DistillSourceOptions

/// `options` of a dataset file (see Protocol/README.md, Files), as a request gives them.
///
/// A mistake here names `options` itself (`params.options`), with the member in the message.
extension DatasetOptions {
    public init(_ field: Field) throws {
        self.init()
        guard let members = field.json.members else {
            throw field.fail("dataset options must be an object, got \(field.json.kindDescription)")
        }
        for (key, value) in members {
            switch key {
            case "fields":
                guard let pairs = value.members else { throw field.fail("option fields must be an object {canonical: name}") }
                for (canonical, name) in pairs {
                    guard Self.canonicalFields.contains(canonical) else {
                        let expected = Self.canonicalFields.sorted().joined(separator: ", ")
                        throw field.fail("option fields: unknown field '\(canonical)' (expected one of \(expected))")
                    }
                    guard let name = name.stringValue else { throw field.fail("option fields: '\(canonical)' must map to a string") }
                    fields[canonical] = name
                }
            case "delimiter":
                // One UTF-8 byte is one ASCII character.
                guard let s = value.stringValue, s.utf8.count == 1, let b = s.utf8.first, Self.isDelimiter(b) else {
                    throw field.fail("option delimiter must be a single ASCII character other than a quote or newline")
                }
                delimiter = b
            default:
                throw field.fail("unknown dataset option '\(key)'")
            }
        }
    }
}
