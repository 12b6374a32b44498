/// `teacher/unload`: forgets the teacher loaded under `name` (requests already using it keep it).
public struct TeacherUnloadRequest: NameRequest {
    public static let method = "teacher/unload"
    public static let fallbackOrdering = Ordering.update
    public typealias Response = Unloaded

    public let name: String

    public init(name: String) { self.name = name }
    public var ordering: Ordering { .updating([name]) }
}
