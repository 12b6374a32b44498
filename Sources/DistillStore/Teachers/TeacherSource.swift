import DistillTensor

extension TeacherOptions {
    /// The other files these options name (vocabulary, indices, mask), in that order.
    var files: [String] { [vocabulary, indices, mask].compactMap { $0 } }

    /// The same options with paths made absolute (for persistence).
    func absolutized() -> TeacherOptions {
        var o = self
        o.vocabulary = vocabulary.map(absolutePath)
        o.indices = indices.map(absolutePath)
        o.mask = mask.map(absolutePath)
        return o
    }
}

/// Where a teacher comes from: a file, its format (nil = detect from content) and options.
public struct TeacherSource: Sendable, Equatable {
    public var path: String
    public var format: TeacherFormat?
    public var options: TeacherOptions

    public init(path: String, format: TeacherFormat? = nil, options: TeacherOptions = TeacherOptions()) {
        self.path = path
        self.format = format
        self.options = options
    }

    /// The main file and the files its options name.
    var files: [String] { [path] + options.files }

    /// Throws `.invalidPath` naming the member (`path`, `options.vocabulary`, ...) for a path holding NUL.
    public func checkPaths() throws {
        try checkPath(path, field: "path")
        if let p = options.vocabulary { try checkPath(p, field: "options.vocabulary") }
        if let p = options.indices { try checkPath(p, field: "options.indices") }
        if let p = options.mask { try checkPath(p, field: "options.mask") }
    }
}

/// Refuses a path holding a NUL character, naming the member of the source that held it
/// (`path`, `options.vocabulary`): the C calls would read only the part before the NUL
/// (`good.safetensors\0/../x` would load `good.safetensors` but be reported and persisted
/// under the whole string).
func checkPath(_ path: String, field: String) throws {
    guard let at = path.utf8.firstIndex(of: 0) else { return }
    let offset = path.utf8.distance(from: path.utf8.startIndex, to: at)
    throw StoreError(
        .invalidPath, "the path holds a NUL character at byte \(offset); a path cannot contain NUL",
        field: field, numbers: ["byte": offset])
}
