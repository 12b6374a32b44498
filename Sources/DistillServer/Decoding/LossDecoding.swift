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
        let nameField = f.child("name")
        let name = try nameField?.oneOf(LossName.allCases.map(\.rawValue) + ["hinton"]) ?? "forward_kl"
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
        do {
            let config = try LossConfig(
                name: name, temperature: tau,
                teacherTemperature: try temperature("teacherTemperature"),
                studentTemperature: try temperature("studentTemperature"),
                scaleBySquaredTemperature: try f.child("scaleBySquaredTemperature")?.bool(),
                alpha: try unit("alpha"), beta: try unit("beta"),
                reduction: try f.child("reduction")?.oneOf(Reduction.allCases.map(\.rawValue)) ?? "mean",
                topKTailPolicy: try f.child("tailPolicy")?.oneOf(TopKTailPolicy.allCases.map(\.rawValue)) ?? "renormalize",
                renormalize: try f.child("renormalize")?.bool() ?? false,
                labels: labels)
            if config.name.usesLabels && labels == nil {
                throw ResponseError.invalidParams(
                    field: f.path + ".labels", "loss \(config.name.rawValue) needs hard labels: an integer array [N, T] or \"dataset\"")
            }
            return config
        } catch let e as LossError {
            throw ModelResolution.error(
                e, teacher: nil,
                student: ResolvedModel(
                    outputs: ModelOutputs(
                        kind: .probs, layout: .dense(values: Tensor(float32: [1], shape: [1, 1, 1])), examples: 1, positions: 1, vocab: 1),
                    ids: nil, labels: nil, field: f, source: "", inlineKey: nil, inlineRank: nil))
        }
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
