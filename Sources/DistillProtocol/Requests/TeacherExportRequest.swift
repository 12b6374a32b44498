import DistillJSON

/// `teacher/export`: a loaded model's top-k log-probabilities at every target token of a paired
/// dataset, written to a safetensors file that distilld loads back as a top-k teacher and a
/// training loop reads with the `safetensors` package alone (offline token-level targets).
public struct TeacherExportRequest: RequestType {
    public static let method = "teacher/export"
    public static let keys: Set<String> = ["model", "dataset", "path", "k", "context", "prompt", "overwrite", "range", "workDoneToken"]
    public static let fallbackOrdering = Ordering.read
    public static let maxK = 1000

    /// Which context the teacher reads before each target.
    public enum Context: String, Sendable, CaseIterable {
        case full, simplified
    }

    public let model: String
    public let dataset: String
    public let pathField: Field
    public let path: String
    public let k: Int
    public let context: Context
    public let prompt: PromptFormat
    /// Whether an existing file at `path` may be replaced (default false).
    public let overwrite: Bool
    /// Only these examples of the dataset (one shard of a large export).
    public let range: ExampleRange?

    public init(params: Field) throws {
        try params.rejectUnknownKeys(Self.keys)
        model = try params.required("model").nonEmptyString()
        dataset = try params.required("dataset").nonEmptyString()
        pathField = try params.required("path")
        path = try pathField.nonEmptyString()
        k = try params.child("k")?.int(min: 1, max: Self.maxK) ?? 20
        context = Context(rawValue: try params.child("context")?.oneOf(Context.allCases.map(\.rawValue)) ?? "full")!
        prompt = try PromptFormat(params.child("prompt"))
        overwrite = try params.child("overwrite")?.bool() ?? false
        range = try ExampleRange(params.child("range"))
    }

    public var ordering: Ordering { .reading([model, dataset]) }

    public struct Response: ResponseType {
        public var path: String
        public var examples: Int
        public var positions: Int
        public var k: Int
        public var vocab: Int
        public var targetTokens: Int
        public var bytes: Int
        /// Probability outside the top k, over target tokens.
        public var tailMean: Double
        public var tailMax: Double
        public var seconds: Double

        public init(
            path: String, examples: Int, positions: Int, k: Int, vocab: Int, targetTokens: Int, bytes: Int, tailMean: Double,
            tailMax: Double, seconds: Double
        ) {
            self.path = path
            self.examples = examples
            self.positions = positions
            self.k = k
            self.vocab = vocab
            self.targetTokens = targetTokens
            self.bytes = bytes
            self.tailMean = tailMean
            self.tailMax = tailMax
            self.seconds = seconds
        }

        /// With `params.range`: the dataset's examples exported, out of how many.
        public var range: (examples: Range<Int>, of: Int)?

        public var json: JSON {
            let o = JSON.object([
                ("path", JSON(path)), ("examples", JSON(examples)), ("positions", JSON(positions)), ("k", JSON(k)),
                ("vocab", JSON(vocab)), ("targetTokens", JSON(targetTokens)), ("bytes", JSON(bytes)),
                ("tailMass", JSON.object([("mean", JSON(tailMean)), ("max", JSON(tailMax))])), ("seconds", JSON(seconds)),
                ("tokensPerSecond", JSON(seconds > 0 ? Double(targetTokens) / seconds : 0)),
            ])
            if let range { o["range"] = ExampleRange.echo(range.examples, of: range.of) }
            return o
        }
    }
}
