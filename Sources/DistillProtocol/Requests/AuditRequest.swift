import DistillJSON

/// `distill/audit`: what keeping only a dense teacher's top k costs the forward KL to a student,
/// for each k and each way of treating the rest, and the smallest k within a bound.
public struct AuditRequest: RequestType {
    public static let method = "distill/audit"
    public static let keys: Set<String> = ["teacher", "student", "ks", "temperature", "bound", "workDoneToken"]
    public static let fallbackOrdering = Ordering.read
    public static let defaultKs = [1, 2, 5, 10, 20, 50, 100]

    public let teacher: ModelReference
    public let student: Deferred<ModelReference>
    public let ks: [Int]
    public let temperature: Double
    public let bound: Double

    public init(params: Field) throws {
        try params.rejectUnknownKeys(Self.keys)
        teacher = try ModelReference(try params.required("teacher"))
        student = Deferred { try ModelReference(try params.required("student")) }
        if let f = params.child("ks") {
            let items = try f.array()
            guard !items.isEmpty, items.count <= 64 else { throw f.fail("must hold 1 to 64 values of k") }
            ks = Array(Set(try items.map { try $0.int(min: 1, max: 1 << 20) })).sorted()
        } else {
            ks = Self.defaultKs
        }
        temperature =
            try params.child("temperature").map { f in
                let t = try f.double()
                guard t >= 1e-4, t <= 1e4 else { throw f.fail("must lie in [1e-4, 1e4], got \(t)") }
                return t
            } ?? 1
        bound =
            try params.child("bound").map { f in
                let b = try f.double()
                guard b > 0 else { throw f.fail("must be positive, got \(b)") }
                return b
            } ?? 0.01
    }

    public var ordering: Ordering { .reading([teacher.loadedName, student.value?.loadedName].compactMap { $0 }) }

    public struct Policy: Sendable {
        public var kl: Double
        public var error: Double
        public var negativePositions: Int

        public init(kl: Double, error: Double, negativePositions: Int) {
            (self.kl, self.error, self.negativePositions) = (kl, error, negativePositions)
        }

        var json: JSON {
            JSON.object([("kl", JSON(kl)), ("error", JSON(error)), ("negativePositions", JSON(negativePositions))])
        }
    }

    public struct Level: Sendable {
        public var k: Int
        public var tailMean: Double
        public var tailMax: Double
        public var studentOutsideMean: Double
        public var studentOutsideMax: Double
        public var policies: [(name: String, result: Policy)]

        public init(
            k: Int, tailMean: Double, tailMax: Double, studentOutsideMean: Double, studentOutsideMax: Double,
            policies: [(name: String, result: Policy)]
        ) {
            self.k = k
            self.tailMean = tailMean
            self.tailMax = tailMax
            self.studentOutsideMean = studentOutsideMean
            self.studentOutsideMax = studentOutsideMax
            self.policies = policies
        }

        var json: JSON {
            JSON.object([
                ("k", JSON(k)), ("tailMass", JSON.object([("mean", JSON(tailMean)), ("max", JSON(tailMax))])),
                ("studentMassOutside", JSON.object([("mean", JSON(studentOutsideMean)), ("max", JSON(studentOutsideMax))])),
                ("policies", JSON.object(policies.map { ($0.name, $0.result.json) })),
            ])
        }
    }

    public struct Response: ResponseType {
        public var temperature: Double
        public var bound: Double
        public var exact: Double
        public var positions: Int
        public var levels: [Level]
        public var smallestK: [(policy: String, k: Int?)]

        public init(
            temperature: Double, bound: Double, exact: Double, positions: Int, levels: [Level], smallestK: [(policy: String, k: Int?)]
        ) {
            self.temperature = temperature
            self.bound = bound
            self.exact = exact
            self.positions = positions
            self.levels = levels
            self.smallestK = smallestK
        }

        public var json: JSON {
            JSON.object([
                ("temperature", JSON(temperature)), ("bound", JSON(bound)), ("exact", JSON(exact)), ("positions", JSON(positions)),
                ("levels", JSON.array(levels.map(\.json))),
                ("smallestK", JSON.object(smallestK.map { ($0.policy, $0.k.map { JSON($0) } ?? .null) })),
            ])
        }
    }
}
