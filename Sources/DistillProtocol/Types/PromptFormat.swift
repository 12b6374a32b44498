import DistillJSON

/// How a model that reads a dataset sees an example (`params.prompt`): the teacher reads
/// `full + separator + target`, a student `simplified + separator + target`, and the loss is taken
/// at the target's tokens. The context is tokenised with the model's special tokens (`addSpecial`
/// of the model), the target without, and the two id sequences are joined, so every model sees the
/// same target tokens. Echoed in the result.
public struct PromptFormat: Sendable, Equatable {
    public var separator: String

    public static let keys: Set<String> = ["separator"]

    public init(separator: String = "\n") { self.separator = separator }

    public init(_ field: Field?) throws {
        guard let field else {
            self.init()
            return
        }
        try field.object().rejectUnknownKeys(Self.keys)
        self.init(separator: try field.child("separator")?.string() ?? "\n")
    }
}
