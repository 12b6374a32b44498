import DistillJSON

/// `teacher/generate`: a loaded model's samples for every example of a dataset (sequence-level
/// targets): n completions of each example's context, each with the model's log-probability of it.
public struct TeacherGenerateRequest: RequestType {
    public static let method = "teacher/generate"
    public static let keys: Set<String> = [
        "model", "dataset", "n", "maxTokens", "temperature", "topK", "topP", "seed", "stop", "context", "prompt", "limit",
        "workDoneToken",
    ]
    public static let fallbackOrdering = Ordering.read

    public let model: String
    public let dataset: String
    public let n: Int
    public let maxTokens: Int
    public let temperature: Double
    public let topK: Int
    public let topP: Double
    public let seed: UInt64
    public let stop: [String]
    /// Which context is the prompt: the full one (default) or the simplified one.
    public let context: TeacherExportRequest.Context
    public let prompt: PromptFormat
    /// At most this many examples, from the first (default: all).
    public let limit: Int?

    public init(params: Field) throws {
        try params.rejectUnknownKeys(Self.keys)
        model = try params.required("model").nonEmptyString()
        dataset = try params.required("dataset").nonEmptyString()
        // The sampling members read as model/generate reads them.
        var sampling: [(String, JSON)] = [("model", JSON(model)), ("prompt", "x")]
        for key in ["maxTokens", "temperature", "topK", "topP", "seed", "n", "stop"] {
            if let v = params.json[key] { sampling.append((key, v)) }
        }
        let generate = try ModelGenerateRequest(params: Field(JSON.object(sampling), path: params.path))
        n = generate.n
        maxTokens = generate.maxTokens
        temperature = generate.temperature
        topK = generate.topK
        topP = generate.topP
        seed = generate.seed
        stop = generate.stop
        context = TeacherExportRequest.Context(
            rawValue: try params.child("context")?.oneOf(TeacherExportRequest.Context.allCases.map(\.rawValue)) ?? "full")!
        prompt = try PromptFormat(params.child("prompt"))
        limit = try params.child("limit")?.int(min: 1)
    }

    public var ordering: Ordering { .reading([model, dataset]) }

    public struct Candidate: Sendable {
        public var text: String
        public var tokens: [Int]
        public var logprob: Double
        public var finishReason: String

        public init(text: String, tokens: [Int], logprob: Double, finishReason: String) {
            (self.text, self.tokens, self.logprob, self.finishReason) = (text, tokens, logprob, finishReason)
        }

        var json: JSON {
            JSON.object([
                ("text", JSON(text)), ("tokens", JSON.array(tokens.map { JSON($0) })), ("logprob", JSON(logprob)),
                ("finishReason", JSON(finishReason)),
            ])
        }
    }

    public struct Example: Sendable {
        public var id: String
        /// The prompt as given to the model: the context and the separator.
        public var prompt: String
        public var candidates: [Candidate]

        public init(id: String, prompt: String, candidates: [Candidate]) {
            (self.id, self.prompt, self.candidates) = (id, prompt, candidates)
        }

        var json: JSON {
            JSON.object([("id", JSON(id)), ("prompt", JSON(prompt)), ("candidates", JSON.array(candidates.map(\.json)))])
        }
    }

    public struct Response: ResponseType {
        public var model: String
        public var examples: [Example]

        public init(model: String, examples: [Example]) {
            self.model = model
            self.examples = examples
        }

        public var json: JSON { JSON.object([("model", JSON(model)), ("examples", JSON.array(examples.map(\.json)))]) }
    }
}
