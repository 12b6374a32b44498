import DistillJSON

#if canImport(Glibc)
    import Glibc
#endif

/// `distill/sequence`: the sequence-level loss on an enumerated candidate set,
/// −Σ_y Pr^t(y|x) log Pr^s(y|x') and the KL restricted to the set, with the teacher mass the
/// set covers.
///
/// Candidate probabilities are one number per candidate and are read with the params; the
/// students' are checked in order against the teacher as each is scored.
public struct SequenceRequest: RequestType {
    public static let method = "distill/sequence"
    public static let keys: Set<String> = ["teacher", "students", "candidates", "labels", "renormalize", "workDoneToken"]
    public static let fallbackOrdering = Ordering.read

    /// `params.teacher`, for complaints about a teacher's candidate.
    public let teacherField: Field
    /// The teacher's probability of each candidate, or the model that gives them.
    public let teacher: Source
    public let students: [Student]
    /// The candidate texts, when models give the probabilities (`{"model", "prompt"}`).
    public let candidates: [String]?
    /// One name per candidate, echoed beside it (the candidate texts unless given).
    public let labels: [String]?

    /// Where a side's candidate probabilities come from.
    public enum Source: Sendable {
        /// Given in the request.
        case values([Double])
        /// A loaded model's probability of each candidate text after `prompt`: exp of the sum of
        /// its log-probabilities of the candidate's tokens (the prompt tokenised with the model's
        /// special tokens when `addSpecial`, each candidate without, joined).
        case model(name: String, prompt: String, addSpecial: Bool)

        public var modelName: String? {
            if case .model(let name, _, _) = self { return name }
            return nil
        }
    }
    /// Whether both sides are renormalised over the set (default false).
    public let renormalize: Bool

    public struct Student: Sendable {
        public let name: String
        public let field: Field
        public let source: Deferred<Source>
    }

    public init(params: Field) throws {
        try params.rejectUnknownKeys(Self.keys)
        teacherField = try params.required("teacher")
        teacher = try Self.source(teacherField)
        candidates = try params.child("candidates").map { f in
            let items = try f.array().map { try $0.string() }
            guard !items.isEmpty else { throw f.fail("must hold at least one candidate") }
            return items
        }
        let count: Int
        switch teacher {
        case .values(let v):
            count = v.count
            if let candidates, candidates.count != count {
                throw params.child("candidates")!.fail("has \(candidates.count) candidates for \(count) teacher probabilities")
            }
        case .model:
            guard let candidates else {
                throw ResponseError.invalidParams(field: params.path + ".candidates", "is required when a model gives the probabilities")
            }
            count = candidates.count
        }
        let studentsField = try params.required("students")
        let members = try studentsField.members()
        guard !members.isEmpty else { throw studentsField.fail("names no student") }
        let hasCandidates = candidates != nil
        students = members.map { m in
            Student(
                name: m.key, field: m.value,
                source: Deferred {
                    let source = try Self.source(m.value)
                    if case .model = source, !hasCandidates {
                        throw ResponseError.invalidParams(
                            field: params.path + ".candidates", "is required when a model gives the probabilities")
                    }
                    return source
                })
        }
        labels = try params.child("labels").map { try $0.array().map { try $0.string() } } ?? candidates
        if let labels, labels.count != count {
            throw params.child("labels")!.fail("has \(labels.count) labels for \(count) candidates")
        }
        renormalize = try params.child("renormalize")?.bool() ?? false
    }

    /// Reads the models that give probabilities.
    public var ordering: Ordering {
        .reading([teacher.modelName].compactMap { $0 } + students.compactMap { $0.source.value?.modelName })
    }

    /// A side's probabilities: given (see `probabilities`), or `{"model", "prompt", "addSpecial"?}`.
    static func source(_ field: Field) throws -> Source {
        if field.json.isObject, let model = field.child("model") {
            try field.rejectUnknownKeys(["model", "prompt", "addSpecial"])
            return .model(
                name: try model.nonEmptyString(), prompt: try field.required("prompt").string(),
                addSpecial: try field.child("addSpecial")?.bool() ?? true)
        }
        return .values(try probabilities(field))
    }

    /// `[p, ...]`, `{"probs": [...]}` or `{"logprobs": [...]}` (sequence probabilities are
    /// often far below float range as probabilities, so log-probabilities are read in double).
    static func probabilities(_ field: Field) throws -> [Double] {
        if field.json.isArray { return try field.array().map { try $0.double() } }
        _ = try field.object()
        try field.rejectUnknownKeys(["probs", "logprobs"])
        if let p = field.child("probs") {
            if field.child("logprobs") != nil { throw field.fail("give probs or logprobs, not both") }
            return try p.array().map { try $0.double() }
        }
        let lp = try field.required("logprobs").array().map { f -> Double in
            guard let v = f.json.doubleValue, !v.isNaN else { throw f.fail("must be a number or \"-Infinity\"") }
            guard v <= 1e-9 else { throw f.fail("a log-probability must be ≤ 0, got \(v)") }
            return v
        }
        return lp.map { exp($0) }
    }

    public struct Response: ResponseType {
        /// The teacher mass on the set.
        public var teacherCoverage: Double
        public var renormalized: Bool
        public var students: [StudentResult]
        /// Student names, lowest cross-entropy first.
        public var ranking: [String]

        public init(teacherCoverage: Double, renormalized: Bool, students: [StudentResult], ranking: [String]) {
            self.teacherCoverage = teacherCoverage
            self.renormalized = renormalized
            self.students = students
            self.ranking = ranking
        }

        public var json: JSON {
            [
                "teacherCoverage": JSON(teacherCoverage), "renormalized": JSON(renormalized),
                "students": JSON.array(students.map(\.json)), "ranking": JSON.array(ranking), "best": JSON(ranking[0]),
            ]
        }
    }

    public struct StudentResult: Sendable {
        public var name: String
        public var crossEntropy: Double
        public var kl: Double
        public var teacherEntropy: Double
        public var studentCoverage: Double
        public var candidates: [Candidate]

        public init(
            name: String, crossEntropy: Double, kl: Double, teacherEntropy: Double, studentCoverage: Double, candidates: [Candidate]
        ) {
            self.name = name
            self.crossEntropy = crossEntropy
            self.kl = kl
            self.teacherEntropy = teacherEntropy
            self.studentCoverage = studentCoverage
            self.candidates = candidates
        }

        var json: JSON {
            [
                "name": JSON(name), "crossEntropy": JSON(crossEntropy), "kl": JSON(kl),
                "teacherEntropy": JSON(teacherEntropy), "studentCoverage": JSON(studentCoverage),
                "candidates": JSON.array(candidates.map(\.json)),
            ]
        }
    }

    /// One candidate: the two probabilities (renormalised when asked) and its KL term.
    public struct Candidate: Sendable {
        public var index: Int
        public var p: Double
        public var q: Double
        public var klTerm: Double
        public var label: String?

        public init(index: Int, p: Double, q: Double, klTerm: Double, label: String?) {
            self.index = index
            self.p = p
            self.q = q
            self.klTerm = klTerm
            self.label = label
        }

        var json: JSON {
            let o: JSON = ["index": JSON(index), "p": JSON(p), "q": JSON(q), "klTerm": JSON(klTerm)]
            if let label { o["label"] = JSON(label) }
            return o
        }
    }
}
