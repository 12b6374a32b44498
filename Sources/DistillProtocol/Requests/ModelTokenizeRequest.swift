import DistillJSON

/// `model/tokenize`: a text as the model's tokenizer splits it; with `chat`, the text is first
/// rendered by the model's chat template as the user's message (what `params.prompt.chat` makes of
/// a context), and the reply gives the rendered text too.
public struct ModelTokenizeRequest: RequestType {
    public static let method = "model/tokenize"
    public static let keys: Set<String> = ["model", "text", "addSpecial", "chat"]
    public static let fallbackOrdering = Ordering.read

    public let model: String
    public let text: String
    /// Whether the tokenizer's special tokens (BOS, `<s>`…`</s>`) are added, as the reference's
    /// `add_special_tokens` (
    /// default true; false with `chat`, whose rendered text holds its special tokens already).
    public let addSpecial: Bool
    /// `chat: true` or `{"system": TEXT}`: render `text` with the model's chat template first.
    public let chat: PromptFormat?

    public init(params: Field) throws {
        try params.rejectUnknownKeys(Self.keys)
        model = try params.required("model").nonEmptyString()
        text = try params.required("text").string()
        chat = try params.child("chat").map { try PromptFormat(Field(JSON.object([("chat", $0.json)]), path: "params")) }
        addSpecial = try params.child("addSpecial")?.bool() ?? (chat == nil)
    }

    public var ordering: Ordering { .reading([model]) }

    public struct Response: ResponseType {
        public var tokens: [Int]
        public var pieces: [String]
        /// The rendered chat, when `chat` was given.
        public var text: String?

        public init(tokens: [Int], pieces: [String], text: String? = nil) {
            self.tokens = tokens
            self.pieces = pieces
            self.text = text
        }

        public var json: JSON {
            let out: JSON = ["tokens": JSON.array(tokens.map { JSON($0) }), "pieces": JSON.array(pieces.map { JSON($0) })]
            if let text { out["text"] = JSON(text) }
            return out
        }
    }
}
