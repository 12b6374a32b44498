import DistillJSON
import DistillText
import Foundation

/// `distill/diagnose`: which inputs a student was really trained on (full or simplified), the
/// health of a paired dataset, and how much the simplification takes away from the teacher.
public struct DiagnoseRequest: RequestType {
    public static let method = "distill/diagnose"
    public static let keys: Set<String> = [
        "dataset", "inputs", "nearThreshold", "contextGap", "behaviour", "maxExamples", "workDoneToken",
    ]
    public static let fallbackOrdering = Ordering.read

    /// `params.dataset`, for complaints about the dataset it names.
    public let datasetField: Field
    /// A loaded paired dataset's name.
    public let dataset: String
    /// The inputs the student was trained on, when given.
    public let inputs: Deferred<Inputs?>
    /// The similarity from which an input counts as a near match, in (0, 1]; 0.8 unless given.
    public let nearThreshold: Deferred<Double>
    /// How many inputs and examples a list in the result names at most, 20 unless given.
    public let maxExamples: Deferred<Int>
    public let contextGap: Deferred<ContextGap?>
    public let behaviour: Deferred<Behaviour?>

    /// `params.behaviour`: which dataset a student learnt from, judged by running it on each
    /// example's full and simplified context and scoring the target (models that read the dataset).
    public struct Behaviour: Sendable {
        public let field: Field
        /// A loaded model's name.
        public let student: String
        /// A loaded model's name: its context gap picks the deciding examples, and the student's KL to
        /// it reading either context is reported.
        public let teacher: String?
        public let prompt: PromptFormat

        init(_ field: Field) throws {
            self.field = field
            try field.object().rejectUnknownKeys(["student", "teacher", "separator", "prompt"])
            student = try field.required("student").nonEmptyString()
            teacher = try field.child("teacher")?.nonEmptyString()
            // `separator` is the short form of `prompt: {separator}`, kept from before prompts had kinds.
            if let given = field.child("prompt") {
                if field.child("separator") != nil {
                    throw given.fail("gives the format twice with separator; give one of them")
                }
                prompt = try PromptFormat(given)
            } else {
                prompt = PromptFormat(separator: try field.child("separator")?.string() ?? "\n")
            }
        }
    }

    /// Training inputs: a loaded input list, a file (`{"path", "format"?, "options"?}`, builtins
    /// included) or an inline list of strings.
    public struct Inputs: Sendable {
        public enum Source: Sendable {
            case loaded(String)
            /// Read when the request runs, its `format` and `options` with it from `field`.
            case file(path: String)
            case inline([String])
        }

        public let source: Source
        public let field: Field

        init(_ field: Field) throws {
            self.field = field
            if let name = field.json.stringValue {
                source = .loaded(name)
            } else if field.json.isArray {
                source = .inline(try field.array().map { try $0.string() })
            } else {
                _ = try field.object()
                try field.rejectUnknownKeys(["path", "format", "options"])
                source = .file(path: try field.required("path").nonEmptyString())
            }
        }
    }

    /// `params.contextGap`: the teacher on the full and on the simplified inputs, and optionally
    /// the student on each, resolved one after the other.
    public struct ContextGap: Sendable {
        public let field: Field
        public let teacherFull: ModelReference
        public let teacherSimplified: Deferred<ModelReference>
        /// The student on the simplified inputs.
        public let student: Deferred<ModelReference?>
        /// The student on the full inputs, which needs `student` too.
        public let studentFull: Deferred<ModelReference?>

        init(_ field: Field) throws {
            self.field = field
            _ = try field.object()
            try field.rejectUnknownKeys(["teacherFull", "teacherSimplified", "student", "studentFull"])
            teacherFull = try ModelReference(try field.required("teacherFull"))
            teacherSimplified = Deferred { try ModelReference(try field.required("teacherSimplified")) }
            student = Deferred { try field.child("student").map(ModelReference.init) }
            studentFull = Deferred { try field.child("studentFull").map(ModelReference.init) }
        }

        var loadedNames: [String] {
            [teacherFull.loadedName, teacherSimplified.value?.loadedName, student.value??.loadedName, studentFull.value??.loadedName]
                .compactMap { $0 }
        }
    }

    public init(params: Field) throws {
        try params.rejectUnknownKeys(Self.keys)
        datasetField = try params.required("dataset")
        dataset = try datasetField.string()
        inputs = Deferred { try params.child("inputs").map(Inputs.init) }
        nearThreshold = Deferred {
            try params.child("nearThreshold").map { f -> Double in
                let v = try f.double()
                guard v > 0, v <= 1 else { throw f.fail("must be in (0, 1], got \(v)") }
                return v
            } ?? 0.8
        }
        maxExamples = Deferred { try params.child("maxExamples")?.int(min: 1, max: 100_000) ?? 20 }
        contextGap = Deferred { try params.child("contextGap").map(ContextGap.init) }
        behaviour = Deferred { try params.child("behaviour").map(Behaviour.init) }
    }

    public var ordering: Ordering {
        var names = [dataset]
        if case .loaded(let name)? = inputs.value??.source { names.append(name) }
        names += (contextGap.value ?? nil)?.loadedNames ?? []
        if let b = behaviour.value ?? nil { names += [b.student] + [b.teacher].compactMap { $0 } }
        return .reading(names)
    }

    public struct Response: ResponseType {
        /// The dataset's name.
        public var dataset: String
        public var summary: String
        /// How the inputs were classified, when inputs were given.
        public var classification: Classification?
        public var classified: [ClassifiedInput]
        public var findings: [IntegrityFinding]
        public var stats: SimplificationStats
        public var contextGap: ContextGapResult?
        public var diagnostics: [Diagnostic]
        public var behaviour: BehaviourResult?

        public init(
            dataset: String, summary: String, classification: Classification?, classified: [ClassifiedInput],
            findings: [IntegrityFinding], stats: SimplificationStats, contextGap: ContextGapResult?, diagnostics: [Diagnostic]
        ) {
            self.dataset = dataset
            self.summary = summary
            self.classification = classification
            self.classified = classified
            self.findings = findings
            self.stats = stats
            self.contextGap = contextGap
            self.diagnostics = diagnostics
        }

        public var json: JSON {
            let result: JSON = ["dataset": JSON(dataset), "summary": JSON(summary)]
            if let c = classification {
                let counts = c.counts
                result["classification"] = [
                    "total": JSON(counts.total), "full": JSON(counts.full), "simplified": JSON(counts.simplified),
                    "ambiguous": JSON(counts.ambiguous), "unknown": JSON(counts.unknown),
                    "exact": JSON(counts.exact), "near": JSON(counts.near),
                    "rates": [
                        "full": JSON(c.fullRate), "simplified": JSON(c.simplifiedRate), "ambiguous": JSON(c.ambiguousRate),
                        "unknown": JSON(c.unknownRate), "fullShareOfMatched": JSON(c.fullShareOfMatched),
                    ],
                    "nearThreshold": JSON(c.nearThreshold), "regime": JSON(c.regime.rawValue),
                    "verdict": JSON(c.verdict), "consequence": JSON(c.consequence), "notes": JSON.array(c.notes),
                    "inputs": JSON.array(classified.map(\.json)),
                ]
            }
            let s = stats
            result["integrity"] = [
                "findings": JSON.array(findings.map(\.json)),
                "stats": [
                    "pairs": JSON(s.pairCount), "skipped": JSON(s.skippedCount),
                    "meanCharacterRatio": JSON(s.meanCharacterRatio), "medianCharacterRatio": JSON(s.medianCharacterRatio),
                    "meanTokenRatio": JSON(s.meanTokenRatio), "medianTokenRatio": JSON(s.medianTokenRatio),
                    "meanTokenOverlap": JSON(s.meanTokenOverlap), "meanContextCoverage": JSON(s.meanContextCoverage),
                ],
            ]
            if let contextGap { result["contextGap"] = contextGap.json }
            if let behaviour { result["behaviour"] = behaviour.json }
            result["diagnostics"] = JSON.array(diagnostics.map(\.json))
            return result
        }
    }

    /// What `params.behaviour` found.
    public struct BehaviourResult: Sendable {
        public struct Example: Sendable {
            public var id: String
            /// The student's mean NLL per target token reading the full and the simplified context.
            public var nllFull: Double
            public var nllSimplified: Double
            /// The teacher's KL from its distribution reading the full context to reading the simplified one.
            public var contextGap: Double?
            /// The student's KL to the teacher on x when it reads x′: contextGap + the capacity gap.
            public var kl: Double?
            /// For the deciding examples, with a teacher: the split at every target token.
            public var tokens: [Token]?

            public init(id: String, nllFull: Double, nllSimplified: Double, contextGap: Double?, kl: Double? = nil) {
                (self.id, self.nllFull, self.nllSimplified, self.contextGap, self.kl) = (id, nllFull, nllSimplified, contextGap, kl)
            }

            var json: JSON {
                func optional(_ d: Double?) -> JSON { d.map { JSON($0) } ?? .null }
                let o = JSON.object([
                    ("id", JSON(id)), ("nllFull", JSON(nllFull)), ("nllSimplified", JSON(nllSimplified)),
                    ("advantage", JSON(nllSimplified - nllFull)), ("contextGap", optional(contextGap)), ("kl", optional(kl)),
                    ("capacityGap", optional(kl.flatMap { k in contextGap.map { k - $0 } })),
                ])
                if let tokens { o["tokens"] = JSON.array(tokens.map(\.json)) }
                return o
            }
        }

        /// One target token of a deciding example: KL(p(·|x) ‖ q(·|x′)) = contextGap + capacityGap.
        public struct Token: Sendable {
            public var text: String
            public var position: Int
            public var contextGap: Double
            public var kl: Double

            public init(text: String, position: Int, contextGap: Double, kl: Double) {
                (self.text, self.position, self.contextGap, self.kl) = (text, position, contextGap, kl)
            }

            var json: JSON {
                JSON.object([
                    ("text", JSON(text)), ("position", JSON(position)), ("contextGap", JSON(contextGap)), ("kl", JSON(kl)),
                    ("capacityGap", JSON(kl - contextGap)),
                ])
            }
        }

        public var student: String
        public var teacher: String?
        public var separator: String
        /// A template or chat format (echoed as `prompt`); a separator is `separator` alone.
        public var prompt: PromptFormat?
        public var targetTokens: Int
        /// Mean NLL per target token over all target tokens, reading each context.
        public var nllFull: Double
        public var nllSimplified: Double
        /// Mean KL(teacher on x ‖ student on x) and KL(teacher on x ‖ student on x′) per target token.
        public var klFull: Double?
        public var klSimplified: Double?
        public var meanContextGap: Double?
        public var verdict: String
        public var confidence: Double
        public var pValue: Double
        public var positive: Int
        public var negative: Int
        public var evidence: String
        /// The deciding examples, the largest advantage first (at most maxExamples).
        public var deciding: [Example]
        public var examples: [Example]

        public init(
            student: String, teacher: String?, separator: String, targetTokens: Int, nllFull: Double, nllSimplified: Double,
            klFull: Double?, klSimplified: Double?, meanContextGap: Double?, verdict: String, confidence: Double, pValue: Double,
            positive: Int, negative: Int, evidence: String, deciding: [Example], examples: [Example]
        ) {
            self.student = student
            self.teacher = teacher
            self.separator = separator
            self.targetTokens = targetTokens
            self.nllFull = nllFull
            self.nllSimplified = nllSimplified
            self.klFull = klFull
            self.klSimplified = klSimplified
            self.meanContextGap = meanContextGap
            self.verdict = verdict
            self.confidence = confidence
            self.pValue = pValue
            self.positive = positive
            self.negative = negative
            self.evidence = evidence
            self.deciding = deciding
            self.examples = examples
        }

        var json: JSON {
            func optional(_ d: Double?) -> JSON { d.map { JSON($0) } ?? .null }
            let format: [(String, JSON)] =
                prompt.map { $0.kind == .separator ? [] : [("prompt", JSON.object($0.echo))] } ?? []
            return JSON.object(
                [
                    ("student", JSON(student)), ("teacher", teacher.map { JSON($0) } ?? .null), ("separator", JSON(separator)),
                    ("targetTokens", JSON(targetTokens)),
                    ("nll", JSON.object([("full", JSON(nllFull)), ("simplified", JSON(nllSimplified))])),
                    ("perplexity", JSON.object([("full", JSON(exp(nllFull))), ("simplified", JSON(exp(nllSimplified)))])),
                    ("kl", JSON.object([("full", optional(klFull)), ("simplified", optional(klSimplified))])),
                    ("contextGap", optional(meanContextGap)),
                    (
                        "split",
                        klSimplified.flatMap { total in
                            meanContextGap.map { gap in
                                JSON.object([("total", JSON(total)), ("contextGap", JSON(gap)), ("capacityGap", JSON(total - gap))])
                            }
                        } ?? .null
                    ),
                    ("verdict", JSON(verdict)), ("confidence", JSON(confidence)), ("pValue", JSON(pValue)),
                    ("signs", JSON.object([("positive", JSON(positive)), ("negative", JSON(negative))])),
                    ("evidence", JSON(evidence)),
                    ("deciding", JSON.array(deciding.map(\.json))), ("examples", JSON.array(examples.map(\.json))),
                ] + format)
        }
    }

    /// One training input and what it matched.
    public struct ClassifiedInput: Sendable {
        public var index: Int
        public var line: Int
        /// "full", "simplified", "ambiguous" or "unknown".
        public var kind: String
        public var similarity: Double
        /// "exact" or "near", when it matched.
        public var method: String?
        public var exampleId: String?

        public init(index: Int, line: Int, kind: String, similarity: Double, method: String?, exampleId: String?) {
            self.index = index
            self.line = line
            self.kind = kind
            self.similarity = similarity
            self.method = method
            self.exampleId = exampleId
        }

        var json: JSON {
            let o: JSON = ["index": JSON(index), "line": JSON(line), "kind": JSON(kind), "similarity": JSON(similarity)]
            if let method { o["method"] = JSON(method) }
            if let exampleId { o["exampleId"] = JSON(exampleId) }
            return o
        }
    }

    /// A finding of the pair checks, with the ids of the examples concerned.
    public struct IntegrityFinding: Sendable {
        public var finding: Finding
        public var exampleIds: [String]

        public init(_ finding: Finding, exampleIds: [String]) {
            self.finding = finding
            self.exampleIds = exampleIds
        }

        var json: JSON {
            [
                "code": JSON(finding.code), "severity": JSON(finding.severity.rawValue), "message": JSON(finding.message),
                "count": JSON(exampleIds.count), "exampleIds": JSON.array(exampleIds),
            ]
        }
    }

    /// KL(teacher on full ‖ teacher on simplified) per example, and how a student's loss splits
    /// into that gap and its own.
    public struct ContextGapResult: Sendable {
        public var perExample: [ExampleValue]
        public var spread: SpreadSummary
        public var largest: [ExampleValue]
        public var student: StudentSplit?

        public init(perExample: [ExampleValue], spread: SpreadSummary, largest: [ExampleValue], student: StudentSplit?) {
            self.perExample = perExample
            self.spread = spread
            self.largest = largest
            self.student = student
        }

        var json: JSON {
            let o: JSON = [
                "perExample": ExampleValue.json(perExample, key: "kl"), "spread": spread.json,
                "largest": ExampleValue.json(largest, key: "kl"),
            ]
            if let student { o["student"] = student.json }
            return o
        }
    }

    public struct StudentSplit: Sendable {
        public var total: Double
        public var contextGap: Double
        public var capacityGap: Double
        public var againstSimplifiedTeacher: Double
        public var onFullContext: Double?

        public init(total: Double, contextGap: Double, capacityGap: Double, againstSimplifiedTeacher: Double, onFullContext: Double?) {
            self.total = total
            self.contextGap = contextGap
            self.capacityGap = capacityGap
            self.againstSimplifiedTeacher = againstSimplifiedTeacher
            self.onFullContext = onFullContext
        }

        var json: JSON {
            let split: JSON = [
                "total": JSON(total), "contextGap": JSON(contextGap), "capacityGap": JSON(capacityGap),
                "againstSimplifiedTeacher": JSON(againstSimplifiedTeacher),
            ]
            if let onFullContext { split["onFullContext"] = JSON(onFullContext) }
            return split
        }
    }
}
