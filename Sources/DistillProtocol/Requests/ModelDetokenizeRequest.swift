import DistillJSON

/// `model/detokenize`: token ids back to text.
public struct ModelDetokenizeRequest: RequestType {
    public static let method = "model/detokenize"
    public static let keys: Set<String> = ["model", "tokens", "skipSpecial"]
    public static let fallbackOrdering = Ordering.read

    public let model: String
    public let tokens: [Int]
    /// Whether special tokens are left out of the text (default false).
    public let skipSpecial: Bool

    public init(params: Field) throws {
        try params.rejectUnknownKeys(Self.keys)
        model = try params.required("model").nonEmptyString()
        tokens = try params.required("tokens").array().map { try $0.int() }
        skipSpecial = try params.child("skipSpecial")?.bool() ?? false
    }

    public var ordering: Ordering { .reading([model]) }

    public struct Response: ResponseType {
        public var text: String

        public init(text: String) { self.text = text }

        public var json: JSON { ["text": JSON(text)] }
    }
}
