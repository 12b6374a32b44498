import DistillJSON
import DistillMath
import DistillTensor

/// `params.loss` of `distill/score`: which loss, its temperatures and weights, and hard labels,
/// read into the loss engine's `LossConfig` with every mistake naming its member.
///
/// Reading the params checks the name, the temperature and the kind of labels; the labels
/// themselves need the teacher's shape (and, for `"dataset"`, the loaded dataset), so `config`
/// resolves them in the handler, then raises any complaint about the members after them.
public struct LossParameters: Sendable {
    public static let keys: Set<String> = [
        "name", "temperature", "teacherTemperature", "studentTemperature", "scaleBySquaredTemperature",
        "alpha", "beta", "reduction", "tailPolicy", "renormalize", "labels",
    ]

    /// Where hard labels come from.
    public enum Labels: Sendable {
        /// `"dataset"`: the `label` members of `params.dataset`'s examples.
        case dataset(Field)
        /// An [N, T] (or [N]) integer array, nested JSON or binary.
        case array(Field)
    }

    /// `params.loss` (an empty object when the params have none).
    public let field: Field
    public let name: LossName
    /// One temperature for both sides, 1 unless given.
    public let temperature: Double
    public let labels: Labels?
    /// The members checked after the labels.
    private let rest: Deferred<Rest>

    private struct Rest: Sendable {
        let teacherTemperature: Double?
        let studentTemperature: Double?
        let scaleBySquaredTemperature: Bool?
        let alpha: Double?
        let beta: Double?
        let reduction: Reduction
        let tailPolicy: TopKTailPolicy
        let renormalize: Bool
    }

    /// - Parameter hasDataset: whether the params name a dataset, which labels `"dataset"` need.
    public init(_ field: Field?, hasDataset: Bool) throws {
        let f = field ?? Field(JSON.object(), path: "params.loss")
        _ = try f.object()
        try f.rejectUnknownKeys(Self.keys)
        self.field = f
        name = try Self.choice(f.child("name"), LossName.allCases.map { ($0.rawValue, $0) } + [("hinton", .combined)]) ?? .forwardKL
        temperature = try f.child("temperature").map(Self.temperature) ?? 1
        if let l = f.child("labels") {
            if let s = l.json.stringValue {
                guard s == "dataset" else { throw l.fail("must be an integer array or \"dataset\", got \"\(s)\"") }
                guard hasDataset else { throw l.fail("\"dataset\" needs params.dataset") }
                labels = .dataset(l)
            } else {
                labels = .array(l)
            }
        } else {
            labels = nil
        }
        rest = Deferred {
            func temperature(_ key: String) throws -> Double? { try f.child(key).map(Self.temperature) }
            func unit(_ key: String) throws -> Double? {
                guard let a = f.child(key) else { return nil }
                let v = try a.double()
                guard (0...1).contains(v) else { throw a.fail("must be in [0, 1], got \(v)") }
                return v
            }
            // Every scalar is checked here on its own member; `LossScorer.score` validates the
            // configuration once more for callers of the library.
            return Rest(
                teacherTemperature: try temperature("teacherTemperature"),
                studentTemperature: try temperature("studentTemperature"),
                scaleBySquaredTemperature: try f.child("scaleBySquaredTemperature")?.bool(),
                alpha: try unit("alpha"), beta: try unit("beta"),
                reduction: try Self.choice(f.child("reduction"), Reduction.allCases.map { ($0.rawValue, $0) }) ?? .mean,
                tailPolicy: try Self.choice(f.child("tailPolicy"), TopKTailPolicy.allCases.map { ($0.rawValue, $0) }) ?? .renormalize,
                renormalize: try f.child("renormalize")?.bool() ?? false)
        }
    }

    /// The configuration for a teacher of `examples` × `positions`: reads the labels (an array
    /// here, the dataset's through `datasetLabels`), then the members after them.
    public func config(examples: Int, positions: Int, datasetLabels: (Field) throws -> Tensor) throws -> LossConfig {
        var labelTensor: Tensor? = nil
        switch labels {
        case .dataset(let l)?:
            labelTensor = try datasetLabels(l)
        case .array(let l)?:
            let t = try ArrayDecoding.tensor(l, maxRank: 2, integers: true)
            let shape = t.rank == 1 ? [t.shape[0], 1] : t.shape
            guard shape == [examples, positions] else {
                throw l.fail("has shape \(t.shape); expected [\(examples), \(positions)]")
            }
            labelTensor = try Tensor(storage: t.storage, dtype: t.dtype, shape: shape)
        case nil:
            break
        }
        let r = try rest.get()
        let config = LossConfig(
            name: name, temperature: temperature, teacherTemperature: r.teacherTemperature,
            studentTemperature: r.studentTemperature, scaleBySquaredTemperature: r.scaleBySquaredTemperature,
            alpha: r.alpha, beta: r.beta, reduction: r.reduction, topKTailPolicy: r.tailPolicy,
            renormalize: r.renormalize, labels: labelTensor)
        if config.name.usesLabels && labelTensor == nil {
            throw ResponseError.invalidParams(
                field: field.path + ".labels", "loss \(config.name.rawValue) needs hard labels: an integer array [N, T] or \"dataset\"")
        }
        return config
    }

    /// The value whose wire name the field holds, nil when the field is absent;
    /// other names are refused listing the accepted ones, in `options` order.
    public static func choice<Value>(_ field: Field?, _ options: [(name: String, value: Value)]) throws -> Value? {
        guard let field else { return nil }
        let name = try field.oneOf(options.map(\.name))
        return options.first { $0.name == name }?.value
    }

    /// A temperature member: a number in `LossConfig.temperatureRange`.
    public static func temperature(_ field: Field) throws -> Double {
        let v = try field.double()
        if let problem = LossConfig.temperatureProblem(v) { throw field.fail(problem) }
        return v
    }

    /// The full configuration, echoed in the result so that every number can be reproduced.
    public static func echo(_ c: LossConfig) -> JSON {
        [
            "name": JSON(c.name.rawValue),
            "teacherTemperature": JSON(c.teacherTemperature), "studentTemperature": JSON(c.studentTemperature),
            "scaleBySquaredTemperature": JSON(c.scaleBySquaredTemperature),
            "alpha": JSON(c.alpha), "beta": JSON(c.beta), "reduction": JSON(c.reduction.rawValue),
            "tailPolicy": JSON(c.topKTailPolicy.rawValue), "renormalize": JSON(c.renormalize),
            "labels": JSON(c.labels != nil), "logBase": "e",
        ]
    }
}
