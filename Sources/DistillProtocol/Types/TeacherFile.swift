import DistillSourceOptions

/// A teacher file a request names: `{"path", "format"?, "options"?}`, in `teacher/load`'s
/// params or as a model in an analysis (`params.students.A`). The path may also be a
/// builtin (`builtin:demo`), which the store resolves.
public struct TeacherFile: Sendable, Equatable {
    public let path: String
    /// nil: detected from the content.
    public let format: TeacherFormat?
    /// nil when the request gave none (a builtin refuses options that are given, even empty).
    public let options: TeacherOptions?

    public init(path: String, format: TeacherFormat? = nil, options: TeacherOptions? = nil) {
        self.path = path
        self.format = format
        self.options = options
    }

    /// Reads `path`, `format` and `options` from `object`, in that order; the caller
    /// refuses the members it does not know.
    public init(_ object: Field) throws {
        path = try object.required("path").nonEmptyString()
        format = try object.child("format").map { TeacherFormat(rawValue: try $0.oneOf(TeacherFormat.allCases.map(\.rawValue)))! }
        options = try object.child("options").map(TeacherOptions.init)
    }
}
