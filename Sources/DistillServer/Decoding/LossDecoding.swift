import DistillJSON
import DistillMath
import DistillProtocol
import DistillTensor

/// Reads `params.loss` into a `LossConfig`, naming the field of every mistake.
enum LossDecoding {
    static let keys: Set<String> = [
        "name", "temperature", "teacherTemperature", "studentTemperature", "scaleBySquaredTemperature",
        "alpha", "beta", "reduction", "tailPolicy", "renormalize", "labels",
    ]

    /// `labels` may be an [N, T] (or [N]) integer array, or the string "dataset"
    /// (resolved by the caller through `datasetLabels`).
    static func config(_ field: Field?, examples: Int, positions: Int, datasetLabels: (() throws -> Tensor)?) throws -> LossConfig {
        let f = field ?? Field(JSON.object(), path: "params.loss")
        _ = try f.object()
        try f.rejectUnknownKeys(keys)
        let name = try choice(f.child("name"), LossName.allCases.map { ($0.rawValue, $0) } + [("hinton", .combined)]) ?? .forwardKL
        func temperature(_ key: String) throws -> Double? {
            guard let t = f.child(key) else { return nil }
            return try temperatureValue(t)
        }
        func unit(_ key: String) throws -> Double? {
            guard let a = f.child(key) else { return nil }
            let v = try a.double()
            guard (0...1).contains(v) else { throw a.fail("must be in [0, 1], got \(v)") }
            return v
        }
        let tau = try temperature("temperature") ?? 1
        var labels: Tensor? = nil
        if let l = f.child("labels") {
            if let s = l.json.stringValue {
                guard s == "dataset" else { throw l.fail("must be an integer array or \"dataset\", got \"\(s)\"") }
                guard let datasetLabels else { throw l.fail("\"dataset\" needs params.dataset") }
                labels = try datasetLabels()
            } else {
                let t = try ArrayDecoding.tensor(l, maxRank: 2, integers: true)
                let shape = t.rank == 1 ? [t.shape[0], 1] : t.shape
                guard shape == [examples, positions] else {
                    throw l.fail("has shape \(t.shape); expected [\(examples), \(positions)]")
                }
                labels = try Tensor(storage: t.storage, dtype: t.dtype, shape: shape)
            }
        }
        // Every scalar is checked above on its own field; `LossScorer.score`
        // validates the configuration once more for callers of the library.
        let config = LossConfig(
            name: name, temperature: tau,
            teacherTemperature: try temperature("teacherTemperature"),
            studentTemperature: try temperature("studentTemperature"),
            scaleBySquaredTemperature: try f.child("scaleBySquaredTemperature")?.bool(),
            alpha: try unit("alpha"), beta: try unit("beta"),
            reduction: try choice(f.child("reduction"), Reduction.allCases.map { ($0.rawValue, $0) }) ?? .mean,
            topKTailPolicy: try choice(f.child("tailPolicy"), TopKTailPolicy.allCases.map { ($0.rawValue, $0) }) ?? .renormalize,
            renormalize: try f.child("renormalize")?.bool() ?? false,
            labels: labels)
        if config.name.usesLabels && labels == nil {
            throw ResponseError.invalidParams(
                field: f.path + ".labels", "loss \(config.name.rawValue) needs hard labels: an integer array [N, T] or \"dataset\"")
        }
        return config
    }

    /// The value whose wire name the field holds, nil when the field is absent;
    /// other names are refused listing the accepted ones, in `options` order.
    static func choice<Value>(_ field: Field?, _ options: [(name: String, value: Value)]) throws -> Value? {
        guard let field else { return nil }
        let name = try field.oneOf(options.map(\.name))
        return options.first { $0.name == name }?.value
    }

    /// A temperature field: a number in `LossConfig.temperatureRange`.
    static func temperatureValue(_ field: Field) throws -> Double {
        let v = try field.double()
        if let problem = LossConfig.temperatureProblem(v) { throw field.fail(problem) }
        return v
    }

    /// The full configuration, echoed so that every number can be reproduced.
    static func echo(_ c: LossConfig) -> JSON {
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
