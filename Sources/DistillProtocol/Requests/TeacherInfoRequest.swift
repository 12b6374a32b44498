/// `teacher/info`: what `teacher/load` answered, for the teacher loaded under `name`.
public struct TeacherInfoRequest: NameRequest {
    public static let method = "teacher/info"
    public static let fallbackOrdering = Ordering.read
    public typealias Response = TeacherInfo

    public let name: String

    public init(name: String) { self.name = name }
    public var ordering: Ordering { .reading([name]) }
}
