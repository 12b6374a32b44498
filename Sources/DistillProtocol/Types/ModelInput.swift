/// The sequences a model request runs on, each with the JSON path of the member it came from, so
/// that a sequence too long for the model is named exactly (`params.texts[1]`).
///
/// Read from exactly one of `text` (one string), `texts` (strings) and `tokens` (one array of
/// ids, or an array of such arrays); `prompt` stands for `text` in `model/generate`.
public enum ModelInput: Sendable, Equatable {
    case text(String, field: String)
    case tokens([Int], field: String)

    public var field: String {
        switch self {
        case .text(_, let f), .tokens(_, let f): return f
        }
    }

    /// The members one of which holds the input (`text` may be spelt `prompt`).
    public static func read(_ params: Field, text: String = "text", texts: String? = "texts") throws -> [ModelInput] {
        let given = [text, texts, "tokens"].compactMap { $0 }.filter { params.child($0) != nil }
        guard given.count == 1 else {
            let names = [text, texts, "tokens"].compactMap { $0 }.joined(separator: ", ")
            if given.isEmpty { throw ResponseError.invalidParams(field: params.path + "." + text, "is required (give one of \(names))") }
            throw ResponseError.invalidParams(field: params.path + "." + given[1], "give one of \(names), not several")
        }
        let field = params.child(given[0])!
        switch given[0] {
        case text: return [.text(try field.string(), field: field.path)]
        case "tokens":
            let items = try field.array()
            guard let first = items.first else { throw field.fail("must hold at least one token") }
            if first.json.isArray {
                return try items.map { .tokens(try ids($0), field: $0.path) }
            }
            return [.tokens(try ids(field), field: field.path)]
        default:
            let items = try field.array()
            guard !items.isEmpty else { throw field.fail("must hold at least one text") }
            return try items.map { .text(try $0.string(), field: $0.path) }
        }
    }

    private static func ids(_ field: Field) throws -> [Int] {
        let items = try field.array()
        guard !items.isEmpty else { throw field.fail("must hold at least one token") }
        return try items.map { try $0.int(min: 0) }
    }
}
