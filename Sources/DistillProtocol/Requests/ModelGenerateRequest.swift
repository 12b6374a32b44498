import DistillJSON

/// `model/generate`: completions of a prompt, drawn with a KV cache; the same seed gives the same
/// completions.
public struct ModelGenerateRequest: RequestType {
    public static let method = "model/generate"
    public static let keys: Set<String> = [
        "model", "prompt", "tokens", "maxTokens", "temperature", "topK", "topP", "seed", "n", "stop", "addSpecial",
    ]
    public static let fallbackOrdering = Ordering.read
    public static let maxCompletions = 16
    public static let maxNewTokens = 4096

    public let model: String
    public let prompt: ModelInput
    public let maxTokens: Int
    public let temperature: Double
    public let topK: Int
    public let topP: Double
    public let seed: UInt64
    public let n: Int
    public let stop: [String]
    public let addSpecial: Bool

    public init(params: Field) throws {
        try params.rejectUnknownKeys(Self.keys)
        model = try params.required("model").nonEmptyString()
        let inputs = try ModelInput.read(params, text: "prompt", texts: nil)
        guard inputs.count == 1 else { throw try params.required("tokens").fail("must be one array of token ids") }
        prompt = inputs[0]
        maxTokens = try params.child("maxTokens")?.int(min: 1, max: Self.maxNewTokens) ?? 32
        temperature =
            try params.child("temperature").map { f in
                let t = try f.double()
                guard t >= 0, t <= 100 else { throw f.fail("must lie in 0...100 (0: greedy), got \(t)") }
                return t
            } ?? 1
        topK = try params.child("topK")?.int(min: 0) ?? 0
        topP =
            try params.child("topP").map { f in
                let p = try f.double()
                guard p > 0, p <= 1 else { throw f.fail("must lie in (0, 1], got \(p)") }
                return p
            } ?? 1
        seed = UInt64(bitPattern: Int64(try params.child("seed")?.int(min: 0) ?? 0))
        n = try params.child("n")?.int(min: 1, max: Self.maxCompletions) ?? 1
        stop =
            try params.child("stop")?.array().map { f in
                let s = try f.string()
                guard !s.isEmpty else { throw f.fail("must not be empty") }
                return s
            } ?? []
        addSpecial = try params.child("addSpecial")?.bool() ?? true
    }

    public var ordering: Ordering { .reading([model]) }

    public struct Completion: Sendable {
        public var tokens: [Int]
        public var text: String
        public var logprob: Double
        public var finishReason: String

        public init(tokens: [Int], text: String, logprob: Double, finishReason: String) {
            self.tokens = tokens
            self.text = text
            self.logprob = logprob
            self.finishReason = finishReason
        }

        var json: JSON {
            JSON.object([
                ("tokens", JSON.array(tokens.map { JSON($0) })), ("text", JSON(text)), ("logprob", JSON(logprob)),
                ("finishReason", JSON(finishReason)),
            ])
        }
    }

    public struct Response: ResponseType {
        public var model: String
        public var promptTokens: [Int]
        public var completions: [Completion]

        public init(model: String, promptTokens: [Int], completions: [Completion]) {
            self.model = model
            self.promptTokens = promptTokens
            self.completions = completions
        }

        public var json: JSON {
            JSON.object([
                ("model", JSON(model)), ("promptTokens", JSON.array(promptTokens.map { JSON($0) })),
                ("completions", JSON.array(completions.map(\.json))),
            ])
        }
    }
}
