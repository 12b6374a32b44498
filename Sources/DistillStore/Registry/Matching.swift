/// How teacher rows line up with dataset examples.
public struct Matching: Sendable, Equatable {
    public enum Method: String, Sendable { case id, order }
    public struct Pair: Sendable, Equatable {
        public let teacherRow: Int
        public let example: Int
    }
    public let method: Method
    /// In dataset order (by id) or row order (by order).
    public let pairs: [Pair]
    /// Teacher rows with no example (ascending).
    public let unmatchedTeacherRows: [Int]
    /// Dataset examples with no teacher row (ascending).
    public let unmatchedExamples: [Int]

    public var isComplete: Bool { unmatchedTeacherRows.isEmpty && unmatchedExamples.isEmpty }
}

/// Pairs teacher rows with dataset examples: by id when both sides have ids
/// (teacher ids given and the dataset's ids were not made from line numbers),
/// otherwise by order (row i ↔ example i, the longer side's tail unmatched).
public func match(teacherIds: [String]?, datasetIds: [String]?, teacherRows: Int, datasetCount: Int) -> Matching {
    if let t = teacherIds, let d = datasetIds {
        var rowOf: [String: Int] = [:]
        for (i, id) in t.enumerated() where rowOf[id] == nil { rowOf[id] = i }
        var pairs: [Matching.Pair] = []
        var used = [Bool](repeating: false, count: t.count)
        var unmatchedExamples: [Int] = []
        for (j, id) in d.enumerated() {
            if let i = rowOf[id], !used[i] {
                used[i] = true
                pairs.append(Matching.Pair(teacherRow: i, example: j))
            } else {
                unmatchedExamples.append(j)
            }
        }
        let unmatchedRows = used.indices.filter { !used[$0] }
        return Matching(method: .id, pairs: pairs, unmatchedTeacherRows: unmatchedRows, unmatchedExamples: unmatchedExamples)
    }
    let m = min(teacherRows, datasetCount)
    return Matching(
        method: .order, pairs: (0..<m).map { Matching.Pair(teacherRow: $0, example: $0) },
        unmatchedTeacherRows: Array(m..<max(m, teacherRows)), unmatchedExamples: Array(m..<max(m, datasetCount)))
}

/// `match` for registry entries.
public func match(teacherIds: [String]?, dataset: DatasetEntry, teacherRows: Int? = nil) -> Matching {
    match(
        teacherIds: teacherIds, datasetIds: dataset.matchableIds, teacherRows: teacherRows ?? teacherIds?.count ?? 0,
        datasetCount: dataset.count)
}

/// `match` for a teacher entry and a dataset entry.
public func match(teacher: TeacherEntry, dataset: DatasetEntry) -> Matching {
    match(teacherIds: teacher.ids, dataset: dataset, teacherRows: teacher.outputs.examples)
}
