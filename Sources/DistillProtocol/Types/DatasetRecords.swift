import DistillJSON

/// A label in a dataset: text or an integer.
public enum DatasetRecordLabel: Sendable, Equatable {
    case string(String)
    case integer(Int)

    public var json: JSON {
        switch self {
        case .string(let s): return JSON(s)
        case .integer(let i): return JSON(i)
        }
    }
}

/// A paired example as `dataset/examples` gives it (schema `store.json#/$defs/example`).
public struct DatasetExample: Sendable, Equatable {
    public var id: String
    public var full: String
    public var simplified: String
    /// 1-based line where the example starts in its file.
    public var line: Int
    public var target: String?
    public var label: DatasetRecordLabel?

    public init(id: String, full: String, simplified: String, line: Int, target: String? = nil, label: DatasetRecordLabel? = nil) {
        self.id = id
        self.full = full
        self.simplified = simplified
        self.line = line
        self.target = target
        self.label = label
    }

    public var json: JSON {
        let o: JSON = ["id": JSON(id), "full": JSON(full), "simplified": JSON(simplified), "line": JSON(line)]
        if let target { o["target"] = JSON(target) }
        if let label { o["label"] = label.json }
        return o
    }
}

/// One input of an input list as `dataset/examples` gives it (schema `store.json#/$defs/inputRecord`).
public struct InputLine: Sendable, Equatable {
    public var text: String
    /// 1-based line in its file.
    public var line: Int

    public init(text: String, line: Int) {
        self.text = text
        self.line = line
    }

    public var json: JSON { ["text": JSON(text), "line": JSON(line)] }
}
