/// A teacher file a request names: `{"path", "format"?, "options"?}`, in `teacher/load`'s
/// params or as a model in an analysis (`params.students.A`). The path may also be a
/// builtin (`builtin:demo`), which the store resolves.
public struct TeacherFile: Sendable, Equatable {
    /// The formats a teacher file may be read as.
    public enum Format: String, Sendable, CaseIterable {
        case safetensors, npy, jsonl
    }

    public let path: String
    /// nil: detected from the content.
    public let format: Format?
    /// nil when the request gave none (a builtin refuses options that are given, even empty).
    public let options: TeacherFileOptions?

    public init(path: String, format: Format? = nil, options: TeacherFileOptions? = nil) {
        self.path = path
        self.format = format
        self.options = options
    }

    /// Reads `path`, `format` and `options` from `object`, in that order; the caller
    /// refuses the members it does not know.
    public init(_ object: Field) throws {
        path = try object.required("path").nonEmptyString()
        format = try object.child("format").map { Format(rawValue: try $0.oneOf(Format.allCases.map(\.rawValue)))! }
        options = try object.child("options").map(TeacherFileOptions.init)
    }
}
