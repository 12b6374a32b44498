import DistillJSON
import DistillMath
import DistillProtocol
import DistillStore
import DistillTensor

/// A teacher or student named in a request, wherever its outputs live.
struct ResolvedModel {
    let outputs: ModelOutputs
    let ids: [String]?
    let labels: [String]?
    /// Where it was given in the request (`params.students.A`).
    let field: Field
    /// "inline", "teacher 'name'" or the file path, for messages and the result.
    let source: String
    /// For inline data: the key that held the values and its rank as sent, so an
    /// error can name `params.students.A.probs[0][2]` exactly.
    let inlineKey: String?
    let inlineRank: Int?

    /// [examples, positions, vocabulary].
    var shape: [Int] { [outputs.examples, outputs.positions, outputs.vocab] }

    /// ShapeMismatch (1003) unless this model has the same [N, T, V] as `reference`.
    func requireSameShape(as reference: ResolvedModel) throws {
        guard shape != reference.shape else { return }
        throw ResponseError(
            code: .shapeMismatch, message: "\(field.path) has shape \(shape) but \(reference.field.path) has \(reference.shape)",
            data: ["field": JSON(field.path), "teacherShape": JSON.array(reference.shape), "studentShape": JSON.array(shape)])
    }

    var sourceJSON: JSON {
        let o: JSON = [
            "source": JSON(source), "examples": JSON(outputs.examples), "positions": JSON(outputs.positions),
            "vocab": JSON(outputs.vocab), "kind": JSON(outputs.kind.rawValue),
            "layout": JSON(outputs.isTopK ? "topk" : "dense"),
        ]
        return o
    }
}

enum ModelResolution {
    /// A model given as a loaded name (`"t"` or `{"teacher": "t"}`), a file
    /// (`{"path": ..., "format": ..., "options": ...}`, builtins included) or inline outputs.
    static func resolve(_ field: Field, context: RequestContext) throws -> ResolvedModel {
        if let name = field.json.stringValue {
            return try loaded(name, field: field, context: context)
        }
        _ = try field.object()
        if let name = field.child("teacher") {
            try field.rejectUnknownKeys(["teacher"])
            return try loaded(try name.string(), field: field, context: context)
        }
        if field.child("path") != nil {
            try field.rejectUnknownKeys(["path", "format", "options"])
            let file = try TeacherFile(field)
            let entry = try storeCall(under: field.path) {
                try context.server.registry.loadAnonymousTeacher(file, isCancelled: { context.cancellation.isCancelled })
            }
            return ResolvedModel(
                outputs: entry.outputs, ids: entry.ids, labels: entry.vocabulary, field: field,
                source: entry.source?.path ?? file.path, inlineKey: nil, inlineRank: nil)
        }
        let outputs = try OutputsDecoding.outputs(field)
        let key = (OutputsDecoding.denseKeys + ["topk"]).first { field.child($0) != nil }!
        let rank: Int?
        if key == "topk" {
            rank = Self.rank(of: field.child("topk")!.child("values")!)
        } else {
            rank = Self.rank(of: field.child(key)!)
        }
        return ResolvedModel(outputs: outputs, ids: nil, labels: nil, field: field, source: "inline", inlineKey: key, inlineRank: rank)
    }

    static func loaded(_ name: String, field: Field, context: RequestContext) throws -> ResolvedModel {
        let entry = try context.server.registry.teacherForUse(named: name)
        return ResolvedModel(
            outputs: entry.outputs, ids: entry.ids, labels: entry.vocabulary, field: field,
            source: "teacher '\(name)'", inlineKey: nil, inlineRank: nil)
    }

    /// The rank of an inline array as sent (nested JSON or binary form).
    static func rank(of field: Field) -> Int {
        if let shape = field.child("shape")?.json { return shape.count }
        var depth = 0
        var node: JSON? = field.json
        while let n = node, n.isArray {
            depth += 1
            node = n[0]
        }
        return depth
    }

    /// Turns a loss-engine complaint into a reply naming the request field.
    static func error(_ e: LossError, teacher: ResolvedModel?, student: ResolvedModel) -> ResponseError {
        let data: JSON = ["side": JSON(e.side.rawValue)]
        if let ex = e.example { data["example"] = JSON(ex) }
        if let p = e.position { data["position"] = JSON(p) }
        if let v = e.vocabIndex { data["vocabIndex"] = JSON(v) }
        switch e.side {
        case .config:
            let wire = "loss." + member(e.parameter)
            data["field"] = JSON("params." + wire)
            return ResponseError(code: .invalidParams, message: "params.\(wire): \(e.message)", data: data)
        case .teacher, .student:
            let model = e.side == .teacher ? teacher! : student
            if e.parameter == .shape || e.parameter == .vocab || e.parameter == .layout {
                data["field"] = JSON(student.field.path)
                if let t = teacher { data["teacherShape"] = JSON.array(t.shape) }
                data["studentShape"] = JSON.array(student.shape)
                return ResponseError(code: .shapeMismatch, message: "\(student.field.path): \(e.message)", data: data)
            }
            var path = model.field.path
            if let key = model.inlineKey {
                switch e.parameter {
                case .values: path += key == "topk" ? ".topk.values" : "." + key
                case .indices: path += ".topk.indices"
                case .mask: path += model.field.child("lengths") != nil ? ".lengths" : ".mask"
                default: path += "." + member(e.parameter)
                }
                if e.parameter == .values || e.parameter == .indices {
                    let rank = model.inlineRank ?? 3
                    if let ex = e.example, rank >= 2 { path += "[\(ex)]" }
                    if let p = e.position, rank >= 3 { path += "[\(p)]" }
                    if let v = e.vocabIndex { path += "[\(v)]" }
                }
                data["field"] = JSON(path)
                return ResponseError(code: .invalidParams, message: "\(path): \(e.message)", data: data)
            }
            // File or loaded data: name the source and the position.
            data["field"] = JSON(path)
            data["source"] = JSON(model.source)
            var at = ""
            if let ex = e.example { at += " example \(ex)" }
            if let p = e.position { at += " position \(p)" }
            if let v = e.vocabIndex { at += " output \(v)" }
            return ResponseError(code: .invalidParams, message: "\(path) (\(model.source),\(at)): \(e.message)", data: data)
        }
    }

    /// The request member a loss-engine parameter is read from: a member of
    /// `params.loss` for the configuration, of a model's outputs otherwise.
    static func member(_ parameter: LossError.Parameter) -> String {
        switch parameter {
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

#if canImport(Glibc)
    import Glibc
#endif

enum FileManagerCompat {
    /// The whole file, or nil when it cannot be read or is not a regular file (a
    /// FIFO or a device could block the reader for ever: it is refused before it
    /// is read, and opening it does not wait for a writer).
    static func read(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = Glibc.read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return n == 0 ? out : nil }
            out.append(contentsOf: chunk[..<n])
        }
    }
}
