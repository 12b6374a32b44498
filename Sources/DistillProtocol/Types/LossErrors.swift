import DistillJSON
import DistillMath

/// A teacher or student as the request gave it: what a complaint of the loss engine about its
/// outputs names.
public struct ModelSite: Sendable {
    /// Where it was given (`params.students.A`).
    public let field: Field
    /// "inline", "teacher 'name'" or the file's path.
    public let source: String
    /// The outputs' members, when given inline.
    public let inline: InlineOutputs?
    /// [examples, positions, vocabulary].
    public let shape: [Int]

    public init(field: Field, source: String, inline: InlineOutputs?, shape: [Int]) {
        self.field = field
        self.source = source
        self.inline = inline
        self.shape = shape
    }
}

/// The loss engine names what it refuses by parameter and position; this is the one place
/// where those become request members.
extension LossError.Parameter {
    /// The request member the parameter is read from: a member of `params.loss` for the
    /// configuration, of a model's outputs otherwise.
    public var member: String {
        switch self {
        case .values: return "values"
        case .indices: return "indices"
        case .mask: return "mask"
        case .shape: return "shape"
        case .vocab: return "vocab"
        case .layout: return "layout"
        case .kind: return "kind"
        case .sequences: return "sequences"
        case .name: return "name"
        case .temperature: return "temperature"
        case .teacherTemperature: return "teacherTemperature"
        case .studentTemperature: return "studentTemperature"
        case .alpha: return "alpha"
        case .beta: return "beta"
        case .reduction: return "reduction"
        case .tailPolicy: return "tailPolicy"
        case .labels: return "labels"
        }
    }
}

extension LossError {
    /// The reply for a complaint about the configuration (`params.loss.alpha`), a value of an
    /// inline array (`params.students.A.probs[0][2]`), or a row of a file or loaded teacher
    /// (named with its source and position); a mismatch between the sides is ShapeMismatch.
    public func reply(teacher: ModelSite?, student: ModelSite) -> ResponseError {
        let data: JSON = ["side": JSON(side.rawValue)]
        if let ex = example { data["example"] = JSON(ex) }
        if let p = position { data["position"] = JSON(p) }
        if let v = vocabIndex { data["vocabIndex"] = JSON(v) }
        switch side {
        case .config:
            let wire = "loss." + parameter.member
            data["field"] = JSON("params." + wire)
            return ResponseError(code: .invalidParams, message: "params.\(wire): \(message)", data: data)
        case .teacher, .student:
            let model = side == .teacher ? teacher! : student
            if parameter == .shape || parameter == .vocab || parameter == .layout {
                data["field"] = JSON(student.field.path)
                if let t = teacher { data["teacherShape"] = JSON.array(t.shape) }
                data["studentShape"] = JSON.array(student.shape)
                return ResponseError(code: .shapeMismatch, message: "\(student.field.path): \(message)", data: data)
            }
            var path = model.field.path
            if let inline = model.inline {
                switch parameter {
                case .values: path += inline.key == "topk" ? ".topk.values" : "." + inline.key
                case .indices: path += ".topk.indices"
                case .mask: path += inline.hasLengths ? ".lengths" : ".mask"
                default: path += "." + parameter.member
                }
                if parameter == .values || parameter == .indices {
                    if let ex = example, inline.rank >= 2 { path += "[\(ex)]" }
                    if let p = position, inline.rank >= 3 { path += "[\(p)]" }
                    if let v = vocabIndex { path += "[\(v)]" }
                }
                data["field"] = JSON(path)
                return ResponseError(code: .invalidParams, message: "\(path): \(message)", data: data)
            }
            // File or loaded data: name the source and the position.
            data["field"] = JSON(path)
            data["source"] = JSON(model.source)
            var at = ""
            if let ex = example { at += " example \(ex)" }
            if let p = position { at += " position \(p)" }
            if let v = vocabIndex { at += " output \(v)" }
            return ResponseError(code: .invalidParams, message: "\(path) (\(model.source),\(at)): \(message)", data: data)
        }
    }

    /// The reply for a complaint about a sequence-level candidate list: the side's member and
    /// the candidate (`params.students.A[3]`).
    public func reply(teacherField: Field, studentField: Field) -> ResponseError {
        var path = (side == .teacher ? teacherField : studentField).path
        if let i = vocabIndex { path += "[\(i)]" }
        return ResponseError(code: .invalidParams, message: "\(path): \(message)", data: ["field": JSON(path)])
    }

    /// The reply for a complaint about a group of models given together (`params.contextGap`),
    /// which names the side and position in its message.
    public func reply(summarizedAt path: String) -> ResponseError {
        ResponseError(code: .invalidParams, message: "\(path): \(self)", data: ["field": JSON(path)])
    }
}
