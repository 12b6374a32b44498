import DistillJSON

/// `model/tokenize`: a text as the model's tokenizer splits it.
public struct ModelTokenizeRequest: RequestType {
    public static let method = "model/tokenize"
    public static let keys: Set<String> = ["model", "text", "addSpecial"]
    public static let fallbackOrdering = Ordering.read

    public let model: String
    public let text: String
    /// Whether the tokenizer's special tokens (BOS, `<s>`…`</s>`) are added, as the reference's
    /// `add_special_tokens` (default true).
    public let addSpecial: Bool

    public init(params: Field) throws {
        try params.rejectUnknownKeys(Self.keys)
        model = try params.required("model").nonEmptyString()
        text = try params.required("text").string()
        addSpecial = try params.child("addSpecial")?.bool() ?? true
    }

    public var ordering: Ordering { .reading([model]) }

    public struct Response: ResponseType {
        public var tokens: [Int]
        public var pieces: [String]

        public init(tokens: [Int], pieces: [String]) {
            self.tokens = tokens
            self.pieces = pieces
        }

        public var json: JSON { ["tokens": JSON.array(tokens.map { JSON($0) }), "pieces": JSON.array(pieces.map { JSON($0) })] }
    }
}
