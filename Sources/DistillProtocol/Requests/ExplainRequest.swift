import DistillJSON

/// `distill/explain`: where a divergence comes from (per-output contributions), which way it
/// leans, what temperature does to it and which logits its gradient pushes, in numbers, plain
/// words and charts.
public struct ExplainRequest: RequestType {
    public static let method = "distill/explain"
    public static let keys: Set<String> = [
        "teacher", "students", "labels", "temperatures", "temperature", "example", "position", "topK", "charts", "chartsDir",
        "workDoneToken",
    ]
    public static let fallbackOrdering = Ordering.read
    /// The most temperatures one sweep evaluates: each costs a softmax pair per row.
    public static let maxSweep = 256
    /// The temperatures swept when the request gives none.
    public static let defaultSweep = [0.5, 1, 2, 4, 8]

    public let teacher: ModelReference
    public let students: Deferred<[StudentReference]>
    /// `params.labels`, checked against the teacher's vocabulary by the handler.
    public let labelsField: Field?
    /// A name per output, replacing the teacher's vocabulary.
    public let labels: Deferred<[String]?>
    /// The temperatures swept.
    public let sweep: Deferred<[Double]>
    /// The temperature of the contributions and the gradient, 1 unless given.
    public let temperature: Deferred<Double>
    /// How many outputs the top share counts, 3 unless given.
    public let topK: Deferred<Int>
    /// One example (an id, or an index when no id matches it); checked against the teacher.
    public let example: Field?
    /// One position of that example; every valid one when absent.
    public let position: Field?
    /// Whether the result carries the SVG charts, true unless given.
    public let charts: Deferred<Bool>
    /// A directory to write the charts to.
    public let chartsDir: Deferred<(directory: String, field: Field)?>

    public init(params: Field) throws {
        try params.rejectUnknownKeys(Self.keys)
        teacher = try ModelReference(try params.required("teacher"))
        students = Deferred { try StudentReference.list(try params.required("students")) }
        labelsField = params.child("labels")
        labels = Deferred { try params.child("labels").map { try $0.array().map { try $0.string() } } }
        sweep = Deferred {
            guard let f = params.child("temperatures") else { return Self.defaultSweep }
            let temperatures = try f.array().map(LossParameters.temperature)
            if temperatures.count > Self.maxSweep {
                throw f.fail("has \(temperatures.count) temperatures; at most \(Self.maxSweep) are swept")
            }
            return temperatures
        }
        temperature = Deferred { try params.child("temperature").map(LossParameters.temperature) ?? 1 }
        topK = Deferred { try params.child("topK")?.int(min: 1, max: 1000) ?? 3 }
        example = params.child("example")
        position = params.child("position")
        charts = Deferred { try params.child("charts")?.bool() ?? true }
        chartsDir = Deferred { try params.child("chartsDir").map { (try $0.nonEmptyString(), $0) } }
    }

    public var ordering: Ordering {
        .reading([teacher.loadedName].compactMap { $0 } + StudentReference.loadedNames(students.value))
    }

    public struct Response: ResponseType {
        /// How many rows (example positions) were explained.
        public var rows: Int
        public var temperature: Double
        /// The example's id and the position, when one row was explained.
        public var example: String?
        public var position: Int?
        public var students: [Student]
        public var closer: String?
        public var comparison: String?
        /// SVG charts: contributions per student (in order) and the temperature sweep.
        public var charts: Charts?
        /// The chart files written to `chartsDir`.
        public var chartFiles: [String]?
        public var tokens: TokenLosses?

        public init(
            rows: Int, temperature: Double, example: String?, position: Int?, students: [Student], closer: String?,
            comparison: String?, charts: Charts?, chartFiles: [String]?
        ) {
            self.rows = rows
            self.temperature = temperature
            self.example = example
            self.position = position
            self.students = students
            self.closer = closer
            self.comparison = comparison
            self.charts = charts
            self.chartFiles = chartFiles
        }

        public var json: JSON {
            let result: JSON = ["rows": JSON(rows), "temperature": JSON(temperature)]
            if let example { result["example"] = JSON(example) }
            if let position { result["position"] = JSON(position) }
            result["students"] = JSON.array(students.map { $0.json(temperature: temperature) })
            if let closer { result["closer"] = JSON(closer) }
            if let comparison { result["comparison"] = JSON(comparison) }
            if let charts {
                let o: JSON = ["contributions": JSON.object(charts.contributions.map { ($0.student, JSON($0.svg)) })]
                if let t = charts.temperature { o["temperature"] = JSON(t) }
                if !charts.tokens.isEmpty { o["tokens"] = JSON.object(charts.tokens.map { ($0.student, JSON($0.svg)) }) }
                result["charts"] = o
            }
            if let chartFiles { result["chartFiles"] = JSON.array(chartFiles) }
            if let tokens { result["tokens"] = tokens.json }
            return result
        }
    }

    public struct Charts: Sendable {
        public var contributions: [(student: String, svg: String)]
        public var temperature: String?
        /// With a teacher model run on one text: each student's loss per token along the sequence.
        public var tokens: [(student: String, svg: String)] = []

        public init(contributions: [(student: String, svg: String)], temperature: String?) {
            self.contributions = contributions
            self.temperature = temperature
        }
    }

    /// With a teacher model run on one text: the text token by token, with each student's forward KL
    /// (at the temperature) at each position (the distribution there predicts the next token).
    public struct TokenLosses: Sendable {
        public var tokens: [String]
        public var losses: [(student: String, values: [Double?])]

        public init(tokens: [String], losses: [(student: String, values: [Double?])]) {
            self.tokens = tokens
            self.losses = losses
        }

        var json: JSON {
            JSON.array(
                tokens.indices.map { t in
                    JSON.object([
                        ("position", JSON(t)), ("text", JSON(tokens[t])),
                        ("losses", JSON.object(losses.map { ($0.student, $0.values[t].map { JSON($0) } ?? .null) })),
                    ])
                })
        }
    }

    /// One student's explanation.
    public struct Student: Sendable {
        public var name: String
        /// The largest terms of the divergence, largest first.
        public var contributions: [Contribution]
        public var topK: Int
        public var topShare: Double
        public var teacherEntropy: Double
        public var studentEntropy: Double
        public var crossEntropy: Double
        public var forwardKL: Double
        public var reverseKL: Double
        public var sensitiveTo: String
        public var directionText: String
        public var sweep: [SweepPoint]
        public var largeTemperatureLimit: Double?
        /// The argmax outputs' labels, whether they agree, and what disagreeing costs as τ → 0.
        public var teacherArgmax: String
        public var studentArgmax: String
        public var argmaxesAgree: Bool
        public var argmaxDisagreementCost: Double
        public var temperatureText: String
        /// The gradient with respect to the student's logits, by output.
        public var gradient: [GradientValue]
        /// Labels of the outputs the gradient pushes up and down most.
        public var pushedUp: [String]
        public var pushedDown: [String]

        public init(
            name: String, contributions: [Contribution], topK: Int, topShare: Double, teacherEntropy: Double,
            studentEntropy: Double, crossEntropy: Double, forwardKL: Double, reverseKL: Double, sensitiveTo: String,
            directionText: String, sweep: [SweepPoint], largeTemperatureLimit: Double?, teacherArgmax: String,
            studentArgmax: String, argmaxesAgree: Bool, argmaxDisagreementCost: Double, temperatureText: String,
            gradient: [GradientValue], pushedUp: [String], pushedDown: [String]
        ) {
            self.name = name
            self.contributions = contributions
            self.topK = topK
            self.topShare = topShare
            self.teacherEntropy = teacherEntropy
            self.studentEntropy = studentEntropy
            self.crossEntropy = crossEntropy
            self.forwardKL = forwardKL
            self.reverseKL = reverseKL
            self.sensitiveTo = sensitiveTo
            self.directionText = directionText
            self.sweep = sweep
            self.largeTemperatureLimit = largeTemperatureLimit
            self.teacherArgmax = teacherArgmax
            self.studentArgmax = studentArgmax
            self.argmaxesAgree = argmaxesAgree
            self.argmaxDisagreementCost = argmaxDisagreementCost
            self.temperatureText = temperatureText
            self.gradient = gradient
            self.pushedUp = pushedUp
            self.pushedDown = pushedDown
        }

        /// The student as JSON; `temperature` is the one the gradient was taken at.
        func json(temperature: Double) -> JSON {
            let o: JSON = ["name": JSON(name)]
            o["contributions"] = JSON.array(contributions.map(\.json))
            o["topShare"] = ["k": JSON(topK), "share": JSON(topShare)]
            o["entropy"] = ["teacher": JSON(teacherEntropy), "student": JSON(studentEntropy), "crossEntropy": JSON(crossEntropy)]
            o["direction"] = [
                "forwardKl": JSON(forwardKL), "reverseKl": JSON(reverseKL), "sensitiveTo": JSON(sensitiveTo),
                "text": JSON(directionText),
            ]
            o["temperature"] = [
                "sweep": JSON.array(
                    sweep.map { ["temperature": JSON($0.temperature), "kl": JSON($0.kl), "scaledKl": JSON($0.scaledKL)] as JSON }),
                "largeTemperatureLimit": largeTemperatureLimit.map { JSON($0) } ?? .null,
                "smallTemperature": [
                    "teacherArgmax": JSON(teacherArgmax), "studentArgmax": JSON(studentArgmax), "agree": JSON(argmaxesAgree),
                    "argmaxDisagreementCost": JSON(argmaxDisagreementCost),
                ],
                "text": JSON(temperatureText),
            ]
            o["gradient"] = [
                "temperature": JSON(temperature),
                "values": JSON.array(gradient.map { ["index": JSON($0.index), "label": JSON($0.label), "value": JSON($0.value)] as JSON }),
                "pushedUp": JSON.array(pushedUp),
                "pushedDown": JSON.array(pushedDown),
            ]
            return o
        }
    }

    /// One output's term of the divergence: p·(log p − log q) for forward KL.
    public struct Contribution: Sendable {
        public var index: Int
        public var label: String
        public var p: Double
        public var q: Double
        public var term: Double

        public init(index: Int, label: String, p: Double, q: Double, term: Double) {
            self.index = index
            self.label = label
            self.p = p
            self.q = q
            self.term = term
        }

        var json: JSON { ["index": JSON(index), "label": JSON(label), "p": JSON(p), "q": JSON(q), "term": JSON(term)] }
    }

    public struct SweepPoint: Sendable {
        public var temperature: Double
        public var kl: Double
        /// τ²·KL.
        public var scaledKL: Double

        public init(temperature: Double, kl: Double, scaledKL: Double) {
            self.temperature = temperature
            self.kl = kl
            self.scaledKL = scaledKL
        }
    }

    public struct GradientValue: Sendable {
        public var index: Int
        public var label: String
        public var value: Double

        public init(index: Int, label: String, value: Double) {
            self.index = index
            self.label = label
            self.value = value
        }
    }
}
