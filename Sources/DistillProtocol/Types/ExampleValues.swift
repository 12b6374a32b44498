import DistillJSON

/// One value per example, by id: `{"id": "ex1", "loss": 0.12}` (or `"kl"`), for per-example
/// lists and the worst examples.
public struct ExampleValue: Sendable {
    public var id: String
    public var value: Double

    public init(id: String, value: Double) {
        self.id = id
        self.value = value
    }

    /// The list as JSON, each value under `key`.
    public static func json(_ values: [ExampleValue], key: String) -> JSON {
        JSON.array(values.map { ["id": JSON($0.id), key: JSON($0.value)] as JSON })
    }
}

extension Field {
    /// An example id: a string, or an integer written in decimal.
    public func exampleID() throws -> String {
        if let i = json.intValue { return String(i) }
        return try string()
    }
}
