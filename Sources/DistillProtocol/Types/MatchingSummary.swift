import DistillJSON

/// How teacher rows were paired with a dataset's examples: by id or by order, how many pairs,
/// and what was left over on each side.
public struct MatchingSummary: Sendable {
    /// "id" or "order".
    public var method: String
    public var matched: Int
    public var unmatchedTeacherRows: [Int]
    public var unmatchedExamples: [Int]

    public init(method: String, matched: Int, unmatchedTeacherRows: [Int], unmatchedExamples: [Int]) {
        self.method = method
        self.matched = matched
        self.unmatchedTeacherRows = unmatchedTeacherRows
        self.unmatchedExamples = unmatchedExamples
    }

    public var json: JSON {
        JSON.object([
            ("method", JSON(method)),
            ("matched", JSON(matched)),
            ("unmatchedTeacherRows", JSON.array(unmatchedTeacherRows)),
            ("unmatchedExamples", JSON.array(unmatchedExamples)),
        ])
    }
}
