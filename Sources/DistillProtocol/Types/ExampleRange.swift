import DistillJSON

/// `params.range`: score (or export) only the examples `start ..< start + count` of the teacher's
/// rows or of the dataset, so one large file or dataset can be split into shards that separate
/// daemons work on. Ids stay those of the whole (row numbers count from the file's first row), and
/// every per-example value is the one the whole run gives, so shards merge exactly (Protocol/README,
/// "Merging shards").
public struct ExampleRange: Sendable {
    public static let keys: Set<String> = ["start", "count"]

    public var start: Int
    /// Nil: to the last example.
    public var count: Int?
    /// Where it was given, for errors found once the number of examples is known.
    let field: Field?

    public init(start: Int, count: Int? = nil) {
        self.start = start
        self.count = count
        field = nil
    }

    public init?(_ field: Field?) throws {
        guard let field else { return nil }
        try field.object().rejectUnknownKeys(Self.keys)
        start = try field.child("start")?.int(min: 0) ?? 0
        count = try field.child("count")?.int(min: 0)
        self.field = field
    }

    /// The examples it selects out of `total`; -32602 naming `start` or `count` when it reaches
    /// past the end. A start at the end with no count is an empty range.
    public func resolve(examples total: Int) throws -> Range<Int> {
        let path = field?.path ?? "params.range"
        guard start <= total else {
            throw ResponseError.invalidParams(
                field: path + ".start", "starts at example \(start), past the end: there are \(total) examples")
        }
        // Compared as a count, not as start + count, which a huge count would overflow.
        let available = total - start
        guard let count else { return start..<total }
        guard count <= available else {
            throw ResponseError.invalidParams(
                field: path + ".count",
                "asks for \(count) examples from \(start), past the end: there are \(total) examples (at most \(available) from \(start))"
            )
        }
        return start..<(start + count)
    }

    /// The echo: what was scored, out of how many.
    public static func echo(_ range: Range<Int>, of total: Int) -> JSON {
        ["start": JSON(range.lowerBound), "count": JSON(range.count), "of": JSON(total)]
    }
}
