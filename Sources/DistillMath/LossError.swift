/// A rejected input or configuration, precise enough for the server to name
/// the offending JSON path (e.g. `params.students.A.probs[0][2]`).
///
/// `field` is relative to the side's tensor group or to the loss config:
/// `values`, `indices`, `mask`, `labels`, `shape`, `vocab`, `layout`, `kind`,
/// `loss.name`, `loss.temperature`, `loss.teacher_temperature`,
/// `loss.student_temperature`, `loss.alpha`, `loss.beta`, `loss.reduction`.
/// `example`/`position` index the [N, T] grid; `vocabIndex` is the vocabulary
/// index for dense values, or the slot k for top-k tensors.
public struct LossError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Side: String, Sendable { case teacher, student, config }

    public var side: Side
    public var field: String
    public var example: Int?
    public var position: Int?
    public var vocabIndex: Int?
    public var message: String

    public init(side: Side, field: String, example: Int? = nil, position: Int? = nil, vocabIndex: Int? = nil, message: String) {
        self.side = side
        self.field = field
        self.example = example
        self.position = position
        self.vocabIndex = vocabIndex
        self.message = message
    }

    public var description: String {
        var path = "\(side.rawValue).\(field)"
        if let e = example { path += "[\(e)]" }
        if let p = position { path += "[\(p)]" }
        if let v = vocabIndex { path += "[\(v)]" }
        return "\(path): \(message)"
    }

    static func config(_ field: String, _ message: String) -> LossError {
        LossError(side: .config, field: field, message: message)
    }
}
