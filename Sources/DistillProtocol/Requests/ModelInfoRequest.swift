/// `model/info`: what `model/load` answered, for the model loaded under `name`.
public struct ModelInfoRequest: NameRequest {
    public static let method = "model/info"
    public static let fallbackOrdering = Ordering.read
    public typealias Response = ModelInfo

    public let name: String

    public init(name: String) { self.name = name }
    public var ordering: Ordering { .reading([name]) }
}
