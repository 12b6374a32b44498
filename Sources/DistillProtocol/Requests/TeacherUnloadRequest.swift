/// `teacher/unload`: forgets the teacher loaded under `name` (analyses already running keep it).
public struct TeacherUnloadRequest: RequestType {
    public static let method = "teacher/unload"
    public static let keys: Set<String> = ["name"]
    public static let fallbackOrdering = Ordering.update
    public typealias Response = Unloaded

    public let name: String

    public init(params: Field) throws { name = try params.required("name").string() }
    public var ordering: Ordering { .updating([name]) }
}
