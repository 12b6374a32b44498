/// A label: datasets hold strings or integers. (CSV fields that are decimal
/// integers read as `.integer`.)
public enum DatasetLabel: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case integer(Int)

    public var description: String {
        switch self {
        case .string(let s): return s
        case .integer(let i): return String(i)
        }
    }
}

/// One paired example: the teacher sees `full`, the student `simplified`.
public struct Example: Sendable, Equatable {
    public let id: String
    public let full: String
    public let simplified: String
    public let target: String?
    public let label: DatasetLabel?
    /// 1-based line in the file where the example starts.
    public let line: Int
    /// False when the record had no id and `id` was made from its line or position.
    public let hasId: Bool

    /// What an example counts against the memory budget besides its text: the
    /// record and its strings' headers.
    public static let overheadBytes = 64

    public init(
        id: String, full: String, simplified: String, target: String? = nil, label: DatasetLabel? = nil, line: Int,
        hasId: Bool = true
    ) {
        self.hasId = hasId
        self.id = id
        self.full = full
        self.simplified = simplified
        self.target = target
        self.label = label
        self.line = line
    }
}

/// One entry of an input list, with its 1-based line.
public struct InputRecord: Sendable, Equatable {
    public let text: String
    public let line: Int

    /// What an input counts against the memory budget besides its text.
    public static let overheadBytes = 32

    public init(text: String, line: Int) {
        self.text = text
        self.line = line
    }

    /// What this input counts against the memory budget: its text plus `overheadBytes`.
    public var residentBytes: Int { text.utf8.count + Self.overheadBytes }
}
