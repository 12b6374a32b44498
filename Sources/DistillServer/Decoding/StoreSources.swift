import DistillProtocol
import DistillStore

// The registry calls that take the files a request names: the store knows nothing of the
// wire (the formats and options are the values both share, from DistillSourceOptions).

extension Registry {
    /// Reads the teacher file (or builtin) a request names for the request's own use,
    /// under the memory budget; it is released when the request ends.
    func loadAnonymousTeacher(_ file: TeacherFile, isCancelled: (() -> Bool)? = nil) throws -> TeacherEntry {
        try loadAnonymousTeacher(
            path: file.path, format: file.format, options: file.options,
            isCancelled: isCancelled)
    }

    /// Reads the dataset file (or builtin) a request names for its own use, as `kind`.
    func loadAnonymousDataset(_ file: DatasetFile, kind: DatasetKind) throws -> DatasetEntry {
        try loadAnonymousDataset(
            path: file.path, kind: kind, format: file.format, options: file.options)
    }
}
