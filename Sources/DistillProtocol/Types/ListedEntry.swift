import DistillJSON

/// One line of `teacher/list` and `dataset/list` (schema `store.json#/$defs/entrySummary`).
public struct ListedEntry: Sendable {
    public var name: String
    /// Examples: a teacher's rows, a dataset's examples or inputs.
    public var count: Int
    public var residentBytes: Int
    public var mappedBytes: Int
    /// nil for inline data and builtins.
    public var path: String?

    public init(name: String, count: Int, residentBytes: Int, mappedBytes: Int, path: String?) {
        self.name = name
        self.count = count
        self.residentBytes = residentBytes
        self.mappedBytes = mappedBytes
        self.path = path
    }

    public var json: JSON {
        [
            "name": JSON(name), "count": JSON(count), "residentBytes": JSON(residentBytes), "mappedBytes": JSON(mappedBytes),
            "path": path.map { JSON($0) } ?? .null,
        ]
    }
}
