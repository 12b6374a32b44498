/// A request whose only param is the `name` of a loaded teacher or dataset (`teacher/info`,
/// `teacher/unload`, `dataset/info`, `dataset/unload`). Other members are ignored, as they
/// always were.
public protocol NameRequest: RequestType {
    var name: String { get }
    init(name: String)
}

extension NameRequest {
    public static var keys: Set<String> { ["name"] }

    public init(params: Field) throws { self.init(name: try params.required("name").string()) }
}
