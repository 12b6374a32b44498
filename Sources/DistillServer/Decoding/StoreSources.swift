import DistillProtocol
import DistillStore

// The files a request names, from the protocol's wire values to the store's, and the
// registry calls that take them: the store knows nothing of the wire.

extension TeacherFormat {
    init(_ wire: TeacherFile.Format) { self.init(rawValue: wire.rawValue)! }
}

extension TeacherOptions {
    init(_ wire: TeacherFileOptions) {
        self.init(
            kind: wire.kind, allowNonFinite: wire.allowNonFinite, vocabSize: wire.vocabSize, vocabulary: wire.vocabulary,
            indices: wire.indices, mask: wire.mask)
    }
}

extension DatasetKind {
    init(_ wire: DatasetFile.Kind) { self.init(rawValue: wire.rawValue)! }
}

extension DatasetFormat {
    init(_ wire: DatasetFile.Format) { self.init(rawValue: wire.rawValue)! }
}

extension DatasetOptions {
    init(_ wire: DatasetFileOptions) {
        self.init(fields: wire.fields, delimiter: wire.delimiter?.utf8.first)
    }
}

extension Registry {
    /// Reads the teacher file (or builtin) a request names for the request's own use,
    /// under the memory budget; it is released when the request ends.
    func loadAnonymousTeacher(_ file: TeacherFile, isCancelled: (() -> Bool)? = nil) throws -> TeacherEntry {
        try loadAnonymousTeacher(
            path: file.path, format: file.format.map(TeacherFormat.init), options: file.options.map(TeacherOptions.init),
            isCancelled: isCancelled)
    }

    /// Reads the dataset file (or builtin) a request names for its own use, as `kind`.
    func loadAnonymousDataset(_ file: DatasetFile, kind: DatasetKind) throws -> DatasetEntry {
        try loadAnonymousDataset(
            path: file.path, kind: kind, format: file.format.map(DatasetFormat.init), options: file.options.map(DatasetOptions.init))
    }
}
