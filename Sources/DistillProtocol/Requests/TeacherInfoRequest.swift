/// `teacher/info`: what `teacher/load` answered, for a teacher loaded under `name`.
public struct TeacherInfoRequest: RequestType {
    public static let method = "teacher/info"
    public static let keys: Set<String> = ["name"]
    public static let fallbackOrdering = Ordering.read
    public typealias Response = TeacherInfo

    public let name: String

    public init(params: Field) throws { name = try params.required("name").string() }
    public var ordering: Ordering { .reading([name]) }
}
