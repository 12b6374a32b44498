import DistillJSON

/// `teacher/list`: every loaded teacher, one line each.
public struct TeacherListRequest: RequestType {
    public static let method = "teacher/list"
    public static let keys: Set<String> = []
    public static let fallbackOrdering = Ordering.read

    public init(params: Field) throws {}
    public var ordering: Ordering { .read }

    public struct Response: ResponseType {
        public var teachers: [ListedEntry]

        public init(teachers: [ListedEntry]) { self.teachers = teachers }

        public var json: JSON { ["teachers": JSON.array(teachers.map(\.json))] }
    }
}
