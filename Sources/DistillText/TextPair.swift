/// One example of a paired distillation dataset: the teacher reads `full` (x),
/// the student reads `simplified` (x').
public struct TextPair: Sendable, Equatable, Hashable {
    /// The example's id; `nil` or blank counts as missing (see `missing-id`).
    public var id: String?
    /// The full-context input x read by the teacher.
    public var full: String
    /// The simplified input x' read by the student.
    public var simplified: String
    /// Optional target text.
    public var target: String?
    /// Optional label.
    public var label: String?

    public init(id: String?, full: String, simplified: String, target: String? = nil, label: String? = nil) {
        self.id = id
        self.full = full
        self.simplified = simplified
        self.target = target
        self.label = label
    }
}
