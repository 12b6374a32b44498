/// A teacher or student named in a request (`store.json#/$defs/model`): a loaded teacher's name
/// (`"t"` or `{"teacher": "t"}`), a file (`{"path", "format"?, "options"?}`, `builtin:` paths
/// included), inline outputs, or a loaded language model run on inputs
/// (`{"model": "m", "texts" | "tokens", "addSpecial"?}`: its next-token distributions).
public struct ModelReference: Sendable {
    public enum Source: Sendable {
        /// A loaded teacher, looked up when the request runs.
        case loaded(String)
        /// A file, read when the request runs. Its `format` and `options` are read with it from
        /// `field` (a builtin takes neither and ignores them).
        case file(path: String)
        /// Outputs in the request itself.
        case inline(InlineOutputs)
        /// A loaded model's log-probabilities at every position of each input, run when the
        /// request runs: example i is input i, its positions its tokens (shorter inputs masked).
        /// With no inputs, the model reads the request's dataset (`distill/score`'s teacher-forced
        /// scoring: the teacher on full contexts, the students on simplified ones, the targets after).
        case running(model: String, inputs: [ModelInput], addSpecial: Bool)
    }

    public let source: Source
    /// Where the model was given (`params.students.A`).
    public let field: Field

    public init(_ field: Field) throws {
        self.field = field
        if let name = field.json.stringValue {
            source = .loaded(name)
            return
        }
        _ = try field.object()
        if let model = field.child("model") {
            try field.rejectUnknownKeys(["model", "text", "texts", "tokens", "addSpecial"])
            // No inputs: the model reads the request's dataset (teacher-forced scoring).
            let hasInputs = ["text", "texts", "tokens"].contains { field.child($0) != nil }
            source = .running(
                model: try model.nonEmptyString(), inputs: hasInputs ? try ModelInput.read(field) : [],
                addSpecial: try field.child("addSpecial")?.bool() ?? true)
        } else if let name = field.child("teacher") {
            try field.rejectUnknownKeys(["teacher"])
            source = .loaded(try name.string())
        } else if let pathField = field.child("path") {
            try field.rejectUnknownKeys(["path", "format", "options"])
            source = .file(path: try pathField.nonEmptyString())
        } else {
            source = .inline(try InlineOutputs(field))
        }
    }

    /// The loaded name this reference reads, if it names one.
    public var loadedName: String? {
        switch source {
        case .loaded(let name), .running(let name, _, _): return name
        case .file, .inline: return nil
        }
    }

    /// Whether this is a model to run on the request's dataset (`{"model": NAME}` with no inputs).
    public var readsDataset: Bool {
        if case .running(_, let inputs, _) = source { return inputs.isEmpty }
        return false
    }

    /// The inline outputs, if the model was given inline.
    public var inline: InlineOutputs? {
        if case .inline(let outputs) = source { return outputs }
        return nil
    }
}

/// A student of `params.students`: its name (the member's key) and its model, whose complaint
/// is raised when the handler comes to it, after the students before it are resolved.
public struct StudentReference: Sendable {
    public let name: String
    public let model: Deferred<ModelReference>

    /// The members of `params.students`, in order; at least one.
    public static func list(_ field: Field) throws -> [StudentReference] {
        let members = try field.members()
        guard !members.isEmpty else { throw field.fail("names no student") }
        return members.map { member in StudentReference(name: member.key, model: Deferred { try ModelReference(member.value) }) }
    }

    /// The loaded names the students read (those that could be read).
    public static func loadedNames(_ students: [StudentReference]?) -> [String] {
        (students ?? []).compactMap { $0.model.value?.loadedName }
    }
}
