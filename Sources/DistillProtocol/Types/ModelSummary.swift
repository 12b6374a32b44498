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

    public var json: JSON {
        [
            "source": JSON(source), "examples": JSON(examples), "positions": JSON(positions),
            "vocab": JSON(vocab), "kind": JSON(kind.rawValue), "layout": JSON(isTopK ? "topk" : "dense"),
        ]
    }
}
