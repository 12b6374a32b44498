/// `teacher/list`: every loaded teacher, one line each.
public struct TeacherListRequest: ListRequest {
    public static let method = "teacher/list"
    public static let member = "teachers"
    public typealias Response = ListedEntries<Self>

    public init() {}
}
