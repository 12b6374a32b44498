import DistillJSON

/// `model/logprobs`: what a model predicts at every position of one or more sequences: the
/// log-probability of the token that follows, the entropy, the top k, and on request the whole
/// log-softmax. Several sequences run in one batched pass.
public struct ModelLogprobsRequest: RequestType {
    public static let method = "model/logprobs"
    public static let keys: Set<String> = ["model", "text", "texts", "tokens", "addSpecial", "topk", "full"]
    public static let fallbackOrdering = Ordering.read
    /// The largest `topk`.
    public static let maxTopK = 100

    public let model: String
    public let inputs: [ModelInput]
    public let addSpecial: Bool
    public let topk: Int
    public let full: Bool

    public init(params: Field) throws {
        try params.rejectUnknownKeys(Self.keys)
        model = try params.required("model").nonEmptyString()
        inputs = try ModelInput.read(params)
        addSpecial = try params.child("addSpecial")?.bool() ?? true
        topk = try params.child("topk")?.int(min: 0, max: Self.maxTopK) ?? 0
        full = try params.child("full")?.bool() ?? false
    }

    public var ordering: Ordering { .reading([model]) }

    /// One sequence's positions.
    public struct Sequence: Sendable {
        public var tokens: [Int]
        public var pieces: [String]
        /// Position t: log p(tokens[t+1] | tokens[...t]); nil for the last position.
        public var logprobs: [Double?]
        public var entropy: [Double]
        /// Per position, best first, when top-k was asked for.
        public var top: [(ids: [Int], pieces: [String], logprobs: [Double])]?
        /// The [T, V] log-softmax, when asked for.
        public var full: [Float]?
        public var vocab: Int

        public init(
            tokens: [Int], pieces: [String], logprobs: [Double?], entropy: [Double],
            top: [(ids: [Int], pieces: [String], logprobs: [Double])]?, full: [Float]?, vocab: Int
        ) {
            self.tokens = tokens
            self.pieces = pieces
            self.logprobs = logprobs
            self.entropy = entropy
            self.top = top
            self.full = full
            self.vocab = vocab
        }

        var json: JSON {
            var members: [(String, JSON)] = [
                ("tokens", JSON.array(tokens.map { JSON($0) })), ("pieces", JSON.array(pieces.map { JSON($0) })),
                ("logprobs", JSON.array(logprobs.map { $0.map { JSON($0) } ?? .null })),
                ("entropy", JSON.array(entropy.map { JSON($0) })),
                ("sum", JSON(logprobs.reduce(0) { $0 + ($1 ?? 0) })),
            ]
            if let top {
                members.append(
                    (
                        "top",
                        JSON.array(
                            top.map {
                                JSON.object([
                                    ("ids", JSON.array($0.ids.map { JSON($0) })), ("pieces", JSON.array($0.pieces.map { JSON($0) })),
                                    ("logprobs", JSON.array($0.logprobs.map { JSON($0) })),
                                ])
                            })
                    ))
            }
            if let full { members.append(("full", BinaryArray.float32(full, shape: [tokens.count, vocab]))) }
            return JSON.object(members)
        }
    }

    public struct Response: ResponseType {
        public var model: String
        public var sequences: [Sequence]

        public init(model: String, sequences: [Sequence]) {
            self.model = model
            self.sequences = sequences
        }

        public var json: JSON { JSON.object([("model", JSON(model)), ("sequences", JSON.array(sequences.map(\.json)))]) }
    }
}
