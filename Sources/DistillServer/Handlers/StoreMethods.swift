import DistillJSON
import DistillProtocol
import DistillStore
import DistillTensor

/// teacher/* and dataset/*: named entries shared by every session.
enum StoreMethods {
    // MARK: - Teachers

    @Sendable static func loadTeacher(_ context: RequestContext) throws -> JSON {
        let params = try context.fields()
        try params.rejectUnknownKeys(["name", "path", "format", "options", "replace", "data", "ids", "labels", "workDoneToken"])
        let name = try params.required("name").nonEmptyString()
        let replace = try params.child("replace")?.bool() ?? false
        let registry = context.server.registry
        let entry: TeacherEntry
        if let data = params.child("data") {
            if params.child("path") != nil { throw data.fail("give path or data, not both") }
            let outputs = try InlineOutputs(data).outputs()
            let ids = try params.child("ids").map { try $0.array().map { try $0.string() } }
            let labels = try params.child("labels").map { try $0.array().map { try $0.string() } }
            if let labels, labels.count != outputs.vocab {
                throw params.child("labels")!.fail("has \(labels.count) labels for a vocabulary of \(outputs.vocab)")
            }
            entry = try storeCall {
                try registry.addTeacher(name: name, outputs: outputs, ids: ids, vocabulary: labels, replace: replace)
            }
        } else {
            let pathField = try params.required("path")
            let path = try pathField.nonEmptyString()
            // Checked whatever the path names, so a mistake is never hidden by a builtin.
            let format = try params.child("format").map {
                TeacherFormat(rawValue: try $0.oneOf(TeacherFormat.allCases.map(\.rawValue)))!
            }
            let options = try parseOptions(params.child("options")) { try TeacherOptions(json: $0) }
            if let builtin = Builtin.teacher(path) {
                for key in ["format", "options"] {
                    if let given = params.child(key) { throw given.fail("a builtin teacher has no \(key); give only its path") }
                }
                entry = try storeCall {
                    try registry.addTeacher(
                        name: name, outputs: builtin.outputs, ids: builtin.ids, vocabulary: builtin.labels, replace: replace)
                }
            } else {
                let source = TeacherSource(path: path, format: format, options: options)
                entry = try storeCall {
                    try registry.loadTeacher(
                        name: name, source: source, replace: replace,
                        progress: { context.report($0, "reading") },
                        isCancelled: { context.cancellation.isCancelled },
                        commitIf: { context.cancellation.claimResult() })
                }
            }
        }
        context.server.log(.info, "teacher '\(name)' loaded: \(entry.outputs.examples)×\(entry.outputs.positions)×\(entry.outputs.vocab)")
        return entry.info
    }

    @Sendable static func listTeachers(_ context: RequestContext) throws -> JSON {
        _ = try context.fields()
        let teachers = context.server.registry.list().filter { $0.type == .teacher }
        return ["teachers": JSON.array(teachers.map(summary))]
    }

    @Sendable static func teacherInfo(_ context: RequestContext) throws -> JSON {
        let name = try context.fields().required("name").string()
        return try context.server.registry.teacher(named: name).info
    }

    @Sendable static func unloadTeacher(_ context: RequestContext) throws -> JSON {
        let name = try context.fields().required("name").string()
        let registry = context.server.registry
        _ = try registry.teacher(named: name)
        try storeCall(wantTeacher: true, name: name) { try registry.unload(name: name) }
        return ["unloaded": JSON(name)]
    }

    // MARK: - Datasets

    @Sendable static func loadDataset(_ context: RequestContext) throws -> JSON {
        let params = try context.fields()
        try params.rejectUnknownKeys(["name", "path", "format", "kind", "options", "replace", "examples", "inputs", "workDoneToken"])
        let name = try params.required("name").nonEmptyString()
        let replace = try params.child("replace")?.bool() ?? false
        let registry = context.server.registry
        let entry: DatasetEntry
        if let examples = params.child("examples") {
            if params.child("path") != nil || params.child("inputs") != nil {
                throw examples.fail("give one of path, examples or inputs")
            }
            let parsed = try inlineExamples(examples)
            entry = try storeCall(wantTeacher: false) { try registry.addDataset(name: name, examples: parsed, replace: replace) }
        } else if let inputs = params.child("inputs") {
            if params.child("path") != nil { throw inputs.fail("give one of path, examples or inputs") }
            let records = try inputs.array().enumerated().map { InputRecord(text: try $1.string(), line: $0 + 1) }
            entry = try storeCall(wantTeacher: false) { try registry.addDataset(name: name, inputs: records, replace: replace) }
        } else {
            let path = try params.required("path").nonEmptyString()
            // Checked whatever the path names, so a mistake is never hidden by a builtin.
            let kind = DatasetKind(rawValue: try params.child("kind")?.oneOf(DatasetKind.allCases.map(\.rawValue)) ?? "paired")!
            let format = try params.child("format").map {
                DatasetFormat(rawValue: try $0.oneOf(DatasetFormat.allCases.map(\.rawValue)))!
            }
            let options = try parseOptions(params.child("options")) { try DatasetOptions(json: $0) }
            if let builtin = Builtin.dataset(path) {
                for key in ["format", "options"] {
                    if let given = params.child(key) { throw given.fail("a builtin dataset has no \(key); give only its path") }
                }
                entry = try storeCall(wantTeacher: false) {
                    switch builtin {
                    case .paired(let examples): return try registry.addDataset(name: name, examples: examples, replace: replace)
                    case .inputs(let inputs): return try registry.addDataset(name: name, inputs: inputs, replace: replace)
                    }
                }
            } else {
                let source = DatasetSource(path: path, kind: kind, format: format, options: options)
                context.report(0, "reading")
                entry = try storeCall(wantTeacher: false) {
                    try registry.loadDataset(
                        name: name, source: source, replace: replace, commitIf: { context.cancellation.claimResult() })
                }
            }
        }
        context.server.log(.info, "dataset '\(name)' loaded: \(entry.count) \(entry.kind == .paired ? "examples" : "inputs")")
        return entry.info
    }

    @Sendable static func listDatasets(_ context: RequestContext) throws -> JSON {
        _ = try context.fields()
        let datasets = context.server.registry.list().filter { $0.type == .dataset }
        return ["datasets": JSON.array(datasets.map(summary))]
    }

    @Sendable static func datasetInfo(_ context: RequestContext) throws -> JSON {
        let name = try context.fields().required("name").string()
        return try context.server.registry.dataset(named: name).info
    }

    @Sendable static func unloadDataset(_ context: RequestContext) throws -> JSON {
        let name = try context.fields().required("name").string()
        let registry = context.server.registry
        _ = try registry.dataset(named: name)
        try storeCall(wantTeacher: false, name: name) { try registry.unload(name: name) }
        return ["unloaded": JSON(name)]
    }

    @Sendable static func examples(_ context: RequestContext) throws -> JSON {
        let params = try context.fields()
        try params.rejectUnknownKeys(["name", "offset", "limit"])
        let name = try params.required("name").string()
        let offset = try params.child("offset")?.int(min: 0) ?? 0
        let limit = try params.child("limit")?.int(min: 0, max: 10_000) ?? 100
        let kind = try context.server.registry.dataset(named: name).kind
        let page = try storeCall(wantTeacher: false, name: name) {
            try context.server.registry.examples(name, offset: offset, limit: limit)
        }
        let result: JSON = ["total": JSON(page.total), "offset": JSON(page.offset)]
        if kind == .inputs {
            result["inputs"] = JSON.array(page.inputs.map { ["text": JSON($0.text), "line": JSON($0.line)] as JSON })
        } else {
            result["examples"] = JSON.array(page.examples.map(exampleJSON))
        }
        return result
    }

    // MARK: - Helpers

    static func exampleJSON(_ e: Example) -> JSON {
        let o: JSON = ["id": JSON(e.id), "full": JSON(e.full), "simplified": JSON(e.simplified), "line": JSON(e.line)]
        if let t = e.target { o["target"] = JSON(t) }
        if let l = e.label { o["label"] = l.json }
        return o
    }

    static func summary(_ s: EntrySummary) -> JSON {
        [
            "name": JSON(s.name), "count": JSON(s.count), "residentBytes": JSON(s.residentBytes),
            "mappedBytes": JSON(s.mappedBytes), "path": s.path.map { JSON($0) } ?? .null,
        ]
    }

    static func inlineExamples(_ field: Field) throws -> [Example] {
        try field.array().enumerated().map { index, item in
            _ = try item.object()
            try item.rejectUnknownKeys(["id", "full", "simplified", "target", "label"])
            let given = try item.child("id").map { f -> String in
                if let i = f.json.intValue { return String(i) }
                return try f.string()
            }
            let label: DatasetLabel? = try item.child("label").map { f in
                if let i = f.json.intValue { return .integer(i) }
                return .string(try f.string())
            }
            return Example(
                id: given ?? String(index + 1), full: try item.required("full").string(),
                simplified: try item.required("simplified").string(), target: try item.child("target")?.string(),
                label: label, line: index + 1, hasId: given != nil)
        }
    }

    /// Store option parsers throw StoreError for a bad member; that is an invalid param here.
    static func parseOptions<T>(_ field: Field?, _ parse: (JSON?) throws -> T) throws -> T {
        do {
            return try parse(field?.json)
        } catch let error as StoreError {
            throw ResponseError.invalidParams(field: field?.path ?? "params.options", error.message)
        }
    }
}
