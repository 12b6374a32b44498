import DistillJSON
import DistillMath

/// `distill/score`: students against a teacher under one loss, on inline data, files or loaded
/// names, with per-example values, the spread, the worst examples, a ranking and other tools'
/// conventions.
public struct ScoreRequest: RequestType {
    public static let method = "distill/score"
    public static let keys: Set<String> = [
        "teacher", "students", "dataset", "loss", "ids", "conventions", "worst", "perExample", "prompt", "range", "workDoneToken",
    ]
    public static let fallbackOrdering = Ordering.read
    /// Other tools' ways of computing the loss, recomputed on request: the wire names of
    /// `Convention`, as the `conventions` capability lists them.
    public static var conventionNames: [String] { Convention.allCases.map(\.rawValue) }

    public let teacher: ModelReference
    public let students: Deferred<[StudentReference]>
    /// A loaded dataset's name: labels `"dataset"` and example ids come from it.
    public let dataset: Deferred<String?>
    /// `params.ids`, checked against the teacher's examples by the handler.
    public let idsField: Field?
    /// Ids to report examples by (strings, or integers written in decimal).
    public let ids: Deferred<[String]?>
    public let loss: Deferred<LossParameters>
    public let conventions: Deferred<[Convention]>
    /// How many of the worst examples each student lists, 5 unless given.
    public let worst: Deferred<Int>
    /// Whether each student lists every example's value, true unless given.
    public let perExample: Deferred<Bool>
    /// How a model reading the dataset sees an example: context, separator, target.
    public let prompt: Deferred<PromptFormat>
    /// Only these examples (of the teacher's rows, or of the dataset a model reads).
    public let range: Deferred<ExampleRange?>

    public init(params: Field) throws {
        try params.rejectUnknownKeys(Self.keys)
        teacher = try ModelReference(try params.required("teacher"))
        students = Deferred { try StudentReference.list(try params.required("students")) }
        dataset = Deferred { try params.child("dataset").map { try $0.string() } }
        idsField = params.child("ids")
        ids = Deferred { try params.child("ids").map { try $0.array().map { try $0.exampleID() } } }
        loss = Deferred { try LossParameters(params.child("loss"), hasDataset: params.child("dataset") != nil) }
        conventions = Deferred {
            try (params.child("conventions")?.array() ?? []).map { Convention(rawValue: try $0.oneOf(Self.conventionNames))! }
        }
        worst = Deferred { try params.child("worst")?.int(min: 0, max: 1000) ?? 5 }
        perExample = Deferred { try params.child("perExample")?.bool() ?? true }
        prompt = Deferred { try PromptFormat(params.child("prompt")) }
        range = Deferred { try ExampleRange(params.child("range")) }
    }

    public var ordering: Ordering {
        .reading(
            [teacher.loadedName].compactMap { $0 } + StudentReference.loadedNames(students.value)
                + [dataset.value ?? nil].compactMap { $0 })
    }

    public struct Response: ResponseType {
        public var loss: LossConfig
        public var teacher: ModelSummary
        /// In the order the students were given.
        public var students: [Student]
        /// Student names, best (lowest loss) first.
        public var ranking: [String]
        /// The runner-up's loss minus the best's; nil with one student.
        public var margin: Double?
        /// How the teacher's rows were paired with `params.dataset`'s examples.
        public var matching: MatchingSummary?

        public init(
            loss: LossConfig, teacher: ModelSummary, students: [Student], ranking: [String], margin: Double?,
            matching: MatchingSummary?, text: TextRun? = nil, range: (examples: Range<Int>, of: Int)? = nil
        ) {
            self.text = text
            self.range = range
            self.loss = loss
            self.teacher = teacher
            self.students = students
            self.ranking = ranking
            self.margin = margin
            self.matching = matching
        }

        public var json: JSON {
            let result: JSON = ["loss": LossParameters.echo(loss), "teacher": teacher.json]
            result["students"] = JSON.array(students.map(\.json))
            result["ranking"] = JSON.array(ranking)
            result["best"] = JSON(ranking[0])
            if let margin {
                let best = students.first { $0.name == ranking[0] }!.loss
                result["margin"] = ["absolute": JSON(margin), "relative": best > 0 && margin.isFinite ? JSON(margin / best) : .null]
            }
            if let matching { result["matching"] = matching.json }
            if let text { result["prompt"] = text.json }
            if let range { result["range"] = ExampleRange.echo(range.examples, of: range.of) }
            if let partial { result["partial"] = ["examplesDone": JSON(partial.examplesDone), "examples": JSON(partial.examples)] }
            return result
        }

        /// When the models read the dataset: how, and how much they read.
        public var text: TextRun?
        /// With `params.range`: the examples scored, out of how many.
        public var range: (examples: Range<Int>, of: Int)?
        /// Set only on the result a cancelled score carries in its error's data.
        public var partial: Partial?
    }

    /// How much of the dataset a cancelled score had scored: its result covers the first
    /// `examplesDone` of `examples`.
    public struct Partial: Sendable {
        public var examplesDone: Int
        public var examples: Int
        public init(examplesDone: Int, examples: Int) {
            self.examplesDone = examplesDone
            self.examples = examples
        }
    }

    /// How models read a dataset's text in teacher-forced scoring, echoed with what was read.
    public struct TextRun: Sendable {
        public var prompt: PromptFormat
        public var examples: Int
        /// Target tokens scored, over all examples.
        public var targetTokens: Int
        /// The longest target, in tokens (the positions of the scored tensors).
        public var positions: Int
        /// Context tokens the teacher read (full contexts and separators), over all examples.
        public var teacherContextTokens: Int
        /// Context tokens each student read (simplified contexts and separators), in the students' order.
        public var studentContextTokens: [(name: String, tokens: Int)]

        public init(
            prompt: PromptFormat, examples: Int, targetTokens: Int, positions: Int, teacherContextTokens: Int,
            studentContextTokens: [(name: String, tokens: Int)]
        ) {
            self.prompt = prompt
            self.examples = examples
            self.targetTokens = targetTokens
            self.positions = positions
            self.teacherContextTokens = teacherContextTokens
            self.studentContextTokens = studentContextTokens
        }

        var json: JSON {
            JSON.object(
                prompt.echo + [
                    ("examples", JSON(examples)), ("targetTokens", JSON(targetTokens)), ("positions", JSON(positions)),
                    (
                        "contextTokens",
                        JSON.object([
                            ("teacher", JSON(teacherContextTokens)),
                            ("students", JSON.object(studentContextTokens.map { ($0.name, JSON($0.tokens)) })),
                        ])
                    ),
                ])
        }
    }

    /// One student's score.
    public struct Student: Sendable {
        public var name: String
        /// The ranking value.
        public var loss: Double
        /// "inline", "teacher 'name'" or the file's path.
        public var source: String
        public var validPositions: Int
        /// The reduced values when the reduction gives no single aggregate.
        public var values: [Double]?
        /// Every example's value, unless the request asked for none.
        public var perExample: [ExampleValue]?
        public var spread: SpreadSummary
        public var worst: [ExampleValue]
        public var top1Agreement: Int
        public var top1AgreementRate: Double
        public var teacherEntropy: Double?
        public var studentEntropy: Double?
        public var crossEntropy: Double?
        /// How the top-k tails were treated, when a side is top-k.
        public var tail: Tail?
        public var conventions: [ConventionValue]
        /// When models read the dataset: the worst examples' target tokens, as text, with their
        /// loss and each model's log-probability of them.
        public var worstTokens: [WorstTokens]?

        public init(
            name: String, loss: Double, source: String, validPositions: Int, values: [Double]?, perExample: [ExampleValue]?,
            spread: SpreadSummary, worst: [ExampleValue], top1Agreement: Int, top1AgreementRate: Double, teacherEntropy: Double?,
            studentEntropy: Double?, crossEntropy: Double?, tail: Tail?, conventions: [ConventionValue]
        ) {
            self.name = name
            self.loss = loss
            self.source = source
            self.validPositions = validPositions
            self.values = values
            self.perExample = perExample
            self.spread = spread
            self.worst = worst
            self.top1Agreement = top1Agreement
            self.top1AgreementRate = top1AgreementRate
            self.teacherEntropy = teacherEntropy
            self.studentEntropy = studentEntropy
            self.crossEntropy = crossEntropy
            self.tail = tail
            self.conventions = conventions
        }

        public var json: JSON {
            let o: JSON = ["name": JSON(name), "loss": JSON(loss), "source": JSON(source), "validPositions": JSON(validPositions)]
            if let values { o["values"] = JSON.array(values) }
            if let perExample { o["perExample"] = ExampleValue.json(perExample, key: "loss") }
            o["spread"] = spread.json
            o["worst"] = ExampleValue.json(worst, key: "loss")
            o["top1Agreement"] = ["count": JSON(top1Agreement), "rate": JSON(top1AgreementRate)]
            o["entropy"] = [
                "teacher": teacherEntropy.map { JSON($0) } ?? .null,
                "student": studentEntropy.map { JSON($0) } ?? .null,
                "crossEntropy": crossEntropy.map { JSON($0) } ?? .null,
            ]
            if let tail { o["tail"] = tail.json }
            if !conventions.isEmpty { o["conventions"] = JSON.array(conventions.map(\.json)) }
            if let worstTokens { o["worstTokens"] = JSON.array(worstTokens.map(\.json)) }
            return o
        }
    }

    /// One of a student's worst examples, token by token (teacher-forced scoring).
    public struct WorstTokens: Sendable {
        public struct Token: Sendable {
            /// The target token as text (its decoded bytes).
            public var text: String
            public var position: Int
            /// The loss at this token.
            public var loss: Double
            /// log p of this token under the teacher (reading the full context) and the student.
            public var teacher: Double
            public var student: Double
            /// Whether the two models' most probable tokens agree here.
            public var agree: Bool

            public init(text: String, position: Int, loss: Double, teacher: Double, student: Double, agree: Bool) {
                (self.text, self.position, self.loss, self.teacher, self.student, self.agree) = (
                    text, position, loss, teacher, student, agree
                )
            }
        }

        public var id: String
        /// The whole target, as text.
        public var target: String
        /// Its tokens, worst first (at most `maxTokens`).
        public var tokens: [Token]
        public static let maxTokens = 10

        public init(id: String, target: String, tokens: [Token]) {
            (self.id, self.target, self.tokens) = (id, target, tokens)
        }

        var json: JSON {
            JSON.object([
                ("id", JSON(id)), ("target", JSON(target)),
                (
                    "tokens",
                    JSON.array(
                        tokens.map {
                            JSON.object([
                                ("text", JSON($0.text)), ("position", JSON($0.position)), ("loss", JSON($0.loss)),
                                ("teacher", JSON($0.teacher)), ("student", JSON($0.student)), ("agree", JSON($0.agree)),
                            ])
                        })
                ),
            ])
        }
    }

    /// The top-k tail policy and the probability mass outside the kept entries, on each side.
    public struct Tail: Sendable {
        public var policy: String
        public var teacherMean: Double
        public var teacherMax: Double
        public var studentMean: Double
        public var studentMax: Double

        public init(policy: String, teacherMean: Double, teacherMax: Double, studentMean: Double, studentMax: Double) {
            self.policy = policy
            self.teacherMean = teacherMean
            self.teacherMax = teacherMax
            self.studentMean = studentMean
            self.studentMax = studentMax
        }

        var json: JSON {
            [
                "policy": JSON(policy),
                "teacherMass": ["mean": JSON(teacherMean), "max": JSON(teacherMax)],
                "studentMass": ["mean": JSON(studentMean), "max": JSON(studentMax)],
            ]
        }
    }

    /// The score recomputed as another tool computes it, beside distilld's own value.
    public struct ConventionValue: Sendable {
        public var name: String
        public var value: Double
        public var distilld: Double
        public var explanation: String

        public init(name: String, value: Double, distilld: Double, explanation: String) {
            self.name = name
            self.value = value
            self.distilld = distilld
            self.explanation = explanation
        }

        var json: JSON {
            ["name": JSON(name), "value": JSON(value), "distilld": JSON(distilld), "explanation": JSON(explanation)]
        }
    }
}
