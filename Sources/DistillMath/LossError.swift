/// A rejected input or configuration, precise enough for the protocol layer
/// to name the offending request member (e.g. `params.students.A.probs[0][2]`).
///
/// `parameter` names the input of the side's tensor group, or the loss
/// parameter when `side` is `config`; the math module knows nothing of how
/// requests spell them. `example`/`position` index the [N, T] grid;
/// `vocabIndex` is the vocabulary index for dense values, the slot k for
/// top-k tensors, or the candidate for sequence-level inputs.
public struct LossError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Side: String, Sendable { case teacher, student, config }

    /// What a rejected value is.
    public enum Parameter: String, Sendable, CaseIterable {
        // A side's outputs.
        /// The dense values or top-k values.
        case values
        /// The top-k vocabulary indices.
        case indices
        /// The valid-position mask.
        case mask
        /// The [N, T] grid, compared between the sides.
        case shape
        /// The vocabulary size, compared between the sides.
        case vocab
        /// Dense or top-k.
        case layout
        /// Logits, probabilities or log-probabilities.
        case kind
        /// Sequence-level candidate probabilities.
        case sequences
        // The loss configuration (`side` is `config`).
        /// The loss.
        case name
        /// One temperature for both sides.
        case temperature
        case teacherTemperature
        case studentTemperature
        case alpha
        case beta
        case reduction
        case tailPolicy
        /// Hard labels [N, T].
        case labels
    }

    public var side: Side
    public var parameter: Parameter
    public var example: Int?
    public var position: Int?
    public var vocabIndex: Int?
    public var message: String

    public init(
        side: Side, parameter: Parameter, example: Int? = nil, position: Int? = nil, vocabIndex: Int? = nil, message: String
    ) {
        self.side = side
        self.parameter = parameter
        self.example = example
        self.position = position
        self.vocabIndex = vocabIndex
        self.message = message
    }

    public var description: String {
        var path = "\(side.rawValue).\(parameter.rawValue)"
        if let e = example { path += "[\(e)]" }
        if let p = position { path += "[\(p)]" }
        if let v = vocabIndex { path += "[\(v)]" }
        return "\(path): \(message)"
    }

    static func config(_ parameter: Parameter, _ message: String) -> LossError {
        LossError(side: .config, parameter: parameter, message: message)
    }
}
