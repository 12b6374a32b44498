import DistillJSON

/// How an analysis lined teacher rows up with a dataset's examples (`distill/score`'s `matching`).
public struct DatasetMatching: Sendable, Equatable {
    /// "id" when both sides had ids, else "order".
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
        [
            "method": JSON(method), "matched": JSON(matched), "unmatchedTeacherRows": JSON.array(unmatchedTeacherRows),
            "unmatchedExamples": JSON.array(unmatchedExamples),
        ]
    }
}
