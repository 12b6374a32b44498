import DistillJSON
import DistillTensor

/// What a result says of a model it read: where from and its [N, T, V] shape, kind and layout.
public struct ModelSummary: Sendable {
    /// "inline", "teacher 'name'" or the file's path.
    public var source: String
    public var examples: Int
    public var positions: Int
    public var vocab: Int
    public var kind: OutputKind
    public var isTopK: Bool

    public init(source: String, outputs: ModelOutputs) {
        self.source = source
        examples = outputs.examples
        positions = outputs.positions
        vocab = outputs.vocab
        kind = outputs.kind
        isTopK = outputs.isTopK
    }

    /// A model known by its shape alone (distributions made a part at a time and never held whole).
    public init(source: String, examples: Int, positions: Int, vocab: Int, kind: OutputKind, isTopK: Bool = false) {
        self.source = source
        self.examples = examples
        self.positions = positions
        self.vocab = vocab
        self.kind = kind
        self.isTopK = isTopK
    }

    public var json: JSON {
        [
            "source": JSON(source), "examples": JSON(examples), "positions": JSON(positions),
            "vocab": JSON(vocab), "kind": JSON(kind.rawValue), "layout": JSON(isTopK ? "topk" : "dense"),
        ]
    }
}
