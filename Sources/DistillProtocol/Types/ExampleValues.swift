import DistillJSON

/// One value per example, by id: `{"id": "ex1", "loss": 0.12}` (or `"kl"`), for per-example
/// lists and the worst examples.
public struct ExampleValue: Sendable {
    public var id: String
    public var value: Double
    /// The example's per-position losses summed before any reduction, and how many positions
    /// were valid: what shards of one run are merged from (`sum`, `valid` on the wire).
    public var sum: Double?
    public var valid: Int?

    public init(id: String, value: Double, sum: Double? = nil, valid: Int? = nil) {
        self.id = id
        self.value = value
        self.sum = sum
        self.valid = valid
    }

    /// The list as JSON, each value under `key`.
    public static func json(_ values: [ExampleValue], key: String) -> JSON {
        JSON.array(
            values.map { v in
                let o: JSON = ["id": JSON(v.id), key: JSON(v.value)]
                if let sum = v.sum { o["sum"] = JSON(sum) }
                if let valid = v.valid { o["valid"] = JSON(valid) }
                return o
            })
    }
}

extension Field {
    /// An example id: a string, or an integer written in decimal.
    public func exampleID() throws -> String {
        if let i = json.intValue { return String(i) }
        return try string()
    }
}
