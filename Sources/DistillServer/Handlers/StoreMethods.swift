import DistillProtocol
import DistillStore
import DistillTensor

/// teacher/* and dataset/*: named entries shared by every session.
enum StoreMethods {
    // MARK: - Teachers

    @Sendable static func loadTeacher(_ request: TeacherLoadRequest, _ context: RequestContext) throws -> TeacherInfo {
        let registry = context.server.registry
        let (name, replace) = (request.target.name, request.target.replace)
        let entry: TeacherEntry
        switch request.source {
        case .data(let data, let idsField, let labelsField):
            let outputs = try InlineOutputs(data).outputs()
            let ids = try idsField.map { try $0.array().map { try $0.string() } }
            let labels = try labelsField.map { try $0.array().map { try $0.string() } }
            if let labels, let labelsField, labels.count != outputs.vocab {
                throw labelsField.fail("has \(labels.count) labels for a vocabulary of \(outputs.vocab)")
            }
            entry = try storeCall {
                try registry.addTeacher(name: name, outputs: outputs, ids: ids, vocabulary: labels, replace: replace)
            }
        case .file(let file):
            entry = try storeCall {
                try registry.loadTeacher(
                    name: name, path: file.path, format: file.format, options: file.options, replace: replace,
                    progress: { context.report($0, "reading") },
                    isCancelled: { context.cancellation.isCancelled },
                    commitIf: { context.cancellation.claimResult() })
            }
        }
        context.server.log(.info, "teacher '\(name)' loaded: \(entry.outputs.examples)×\(entry.outputs.positions)×\(entry.outputs.vocab)")
        return TeacherInfo(entry)
    }

    @Sendable static func listTeachers(_ request: TeacherListRequest, _ context: RequestContext) throws -> TeacherListRequest.Response {
        .init(listed(.teacher, context))
    }

    @Sendable static func teacherInfo(_ request: TeacherInfoRequest, _ context: RequestContext) throws -> TeacherInfo {
        TeacherInfo(try context.server.registry.teacher(named: request.name))
    }

    @Sendable static func unloadTeacher(_ request: TeacherUnloadRequest, _ context: RequestContext) throws -> Unloaded {
        _ = try context.server.registry.teacher(named: request.name)
        return try unload(request.name, teacher: true, context)
    }

    // MARK: - Datasets

    @Sendable static func loadDataset(_ request: DatasetLoadRequest, _ context: RequestContext) throws -> DatasetInfo {
        let registry = context.server.registry
        let (name, replace) = (request.target.name, request.target.replace)
        let entry: DatasetEntry
        switch request.source {
        case .examples(let field):
            let examples = try DatasetLoadRequest.examples(field).enumerated().map { index, e in
                Example(
                    id: e.id ?? String(index + 1), full: e.full, simplified: e.simplified, target: e.target,
                    label: e.label.map(DatasetLabel.init), line: index + 1, hasId: e.id != nil)
            }
            entry = try storeCall(wantTeacher: false) { try registry.addDataset(name: name, examples: examples, replace: replace) }
        case .inputs(let field):
            let inputs = try DatasetLoadRequest.inputs(field).map { InputRecord(text: $0.text, line: $0.line) }
            entry = try storeCall(wantTeacher: false) { try registry.addDataset(name: name, inputs: inputs, replace: replace) }
        case .file(let file):
            context.report(0, "reading")
            entry = try storeCall(wantTeacher: false) {
                try registry.loadDataset(
                    name: name, path: file.path, kind: file.kind ?? .paired, format: file.format, options: file.options,
                    replace: replace, commitIf: { context.cancellation.claimResult() })
            }
        }
        context.server.log(.info, "dataset '\(name)' loaded: \(entry.count) \(entry.kind == .paired ? "examples" : "inputs")")
        return DatasetInfo(entry)
    }

    @Sendable static func listDatasets(_ request: DatasetListRequest, _ context: RequestContext) throws -> DatasetListRequest.Response {
        .init(listed(.dataset, context))
    }

    @Sendable static func datasetInfo(_ request: DatasetInfoRequest, _ context: RequestContext) throws -> DatasetInfo {
        DatasetInfo(try context.server.registry.dataset(named: request.name))
    }

    @Sendable static func unloadDataset(_ request: DatasetUnloadRequest, _ context: RequestContext) throws -> Unloaded {
        _ = try context.server.registry.dataset(named: request.name)
        return try unload(request.name, teacher: false, context)
    }

    @Sendable static func examples(
        _ request: DatasetExamplesRequest, _ context: RequestContext
    ) throws -> DatasetExamplesRequest.Response {
        let page = try storeCall(wantTeacher: false, name: request.name) {
            try context.server.registry.examples(request.name, offset: request.offset, limit: request.limit)
        }
        let records: DatasetExamplesRequest.Response.Records =
            page.kind == .inputs
            ? .inputs(page.inputs.map { InputLine(text: $0.text, line: $0.line) }) : .examples(page.examples.map(DatasetExample.init))
        return .init(total: page.total, offset: page.offset, records: records)
    }
}

extension StoreMethods {
    /// The loaded entries of one type, as the lists give them.
    static func listed(_ type: EntrySummary.EntryType, _ context: RequestContext) -> [ListedEntry] {
        context.server.registry.list().filter { $0.type == type }.map(ListedEntry.init)
    }

    /// Unloads a name already known to be a teacher (or a dataset); an unload that loses a race
    /// with another session's is UnknownTeacher (UnknownDataset) all the same.
    static func unload(_ name: String, teacher: Bool, _ context: RequestContext) throws -> Unloaded {
        try storeCall(wantTeacher: teacher, name: name) { try context.server.registry.unload(name: name) }
        return Unloaded(name: name)
    }
}

// MARK: - Store values as the wire writes them

extension TeacherInfo {
    init(_ entry: TeacherEntry) {
        let outputs = entry.outputs
        self.init(
            name: entry.name, kind: outputs.kind, isTopK: outputs.isTopK, examples: outputs.examples, positions: outputs.positions,
            vocab: outputs.vocab, k: entry.k, dtype: entry.values.dtype, sourceDtype: entry.sourceDtype,
            hasMask: outputs.mask != nil, idCount: entry.ids?.count, vocabularyCount: entry.vocabulary?.count,
            residentBytes: entry.residentBytes, mappedBytes: entry.mappedBytes,
            nonFinite: (entry.nonFinite.nan, entry.nonFinite.posInf, entry.nonFinite.negInf),
            source: entry.source.map { s in
                Source(path: s.path, format: entry.format, options: s.options)
            },
            warnings: entry.warnings, loadedAt: entry.loadedAt.timeIntervalSince1970)
    }
}

extension DatasetInfo {
    init(_ entry: DatasetEntry) {
        self.init(
            name: entry.name, kind: entry.kind, format: entry.format, count: entry.count,
            idsSynthesized: entry.idsSynthesized, bytes: entry.bytes,
            source: entry.source.map { s in
                Source(path: s.path, kind: s.kind, format: entry.format, options: s.options)
            },
            warnings: entry.warnings, loadedAt: entry.loadedAt.timeIntervalSince1970)
    }
}

extension ListedEntry {
    init(_ s: EntrySummary) {
        self.init(name: s.name, count: s.count, residentBytes: s.residentBytes, mappedBytes: s.mappedBytes, path: s.path)
    }
}

extension DatasetExample {
    init(_ e: Example) {
        self.init(
            id: e.id, full: e.full, simplified: e.simplified, line: e.line, target: e.target,
            label: e.label.map(DatasetRecordLabel.init))
    }
}

extension MatchingSummary {
    init(_ m: Matching) {
        self.init(
            method: m.method.rawValue, matched: m.pairs.count, unmatchedTeacherRows: m.unmatchedTeacherRows,
            unmatchedExamples: m.unmatchedExamples)
    }
}

extension DatasetRecordLabel {
    init(_ label: DatasetLabel) {
        switch label {
        case .string(let s): self = .string(s)
        case .integer(let i): self = .integer(i)
        }
    }
}

extension DatasetLabel {
    init(_ label: DatasetRecordLabel) {
        switch label {
        case .string(let s): self = .string(s)
        case .integer(let i): self = .integer(i)
        }
    }
}
