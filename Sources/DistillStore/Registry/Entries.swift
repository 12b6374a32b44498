import DistillTensor
import Foundation

/// A loaded teacher or dataset: what was read (`contents`, whose members also read
/// directly on the entry: `entry.outputs`, `entry.examples`) under a name, with where it
/// came from.
///
/// Immutable: a caller holding one keeps a consistent view (and keeps its mapped file
/// alive) after the registry replaces or unloads it.
@dynamicMemberLookup
public final class StoreEntry<Source: Sendable, Contents: Sendable>: Sendable {
    /// The name it is loaded under; "" for an anonymous entry (see `Registry`).
    public let name: String
    /// Where it was loaded from; nil for inline data and builtins (never persisted).
    public let source: Source?
    public let contents: Contents
    public let loadedAt: Date
    /// What an anonymous entry counts against the budget, until it goes.
    let lease: BudgetLease?

    init(name: String, source: Source?, contents: Contents, lease: BudgetLease? = nil) {
        self.name = name
        self.source = source
        self.contents = contents
        self.lease = lease
        loadedAt = Date()
    }

    /// An entry outside any registry, counted against no budget (analyses over values built in memory).
    public convenience init(name: String, source: Source?, contents: Contents) {
        self.init(name: name, source: source, contents: contents, lease: nil)
    }

    public subscript<Member>(dynamicMember member: KeyPath<Contents, Member>) -> Member { contents[keyPath: member] }

    /// Whether the entry has no name: read for one request's own use.
    public var isAnonymous: Bool { name.isEmpty }
}

public typealias TeacherEntry = StoreEntry<TeacherSource, LoadedTeacher>
public typealias DatasetEntry = StoreEntry<DatasetSource, LoadedDataset>

extension StoreEntry where Contents == LoadedTeacher {
    /// Outputs already in memory (inline data, builtins): `bytes` resident, nothing mapped.
    convenience init(
        name: String = "", outputs: ModelOutputs, ids: [String]?, vocabulary: [String]?, warnings: [String] = [], bytes: Int,
        lease: BudgetLease? = nil
    ) {
        let contents = LoadedTeacher(
            outputs: outputs, format: nil, sourceDtype: valuesTensor(of: outputs).dtype.rawValue, ids: ids, vocabulary: vocabulary,
            warnings: warnings, residentBytes: bytes, mappedBytes: 0, nonFinite: NonFiniteCounts(), metadata: [:])
        self.init(name: name, source: nil, contents: contents, lease: lease)
    }

    /// The bytes outputs already in memory take: their tensors' storage.
    static func inlineBytes(_ outputs: ModelOutputs) -> Int {
        tensors(of: outputs).reduce(0) { $0 + $1.storage.byteCount }
    }

    private static func tensors(of outputs: ModelOutputs) -> [Tensor] {
        var tensors = [valuesTensor(of: outputs)]
        if case .topK(let indices, _) = outputs.layout { tensors.append(indices) }
        if let mask = outputs.mask { tensors.append(mask) }
        return tensors
    }

    /// The values tensor (dense values or top-k values).
    public var values: Tensor { valuesTensor(of: contents.outputs) }

    /// The mapped files this teacher's tensors read from (safetensors, .npy); empty
    /// when everything was copied into memory (JSON Lines, inline data).
    public var files: [MappedFile] {
        var out: [MappedFile] = []
        for t in Self.tensors(of: contents.outputs) {
            var owner: AnyObject? = t.storage
            while let o = owner {
                if let map = o as? MappedFile {
                    if !out.contains(where: { $0 === map }) { out.append(map) }
                    break
                }
                owner = (o as? TensorStorage)?.keptAlive
            }
        }
        return out
    }

    /// Throws `.fileChanged` naming the file when a file this teacher reads from
    /// changed since it was loaded (see `MappedFile.checkUnchanged`); call before
    /// each use. Inside `FileGuard.run`, the files are also watched for truncation
    /// until the run ends.
    public func checkFiles() throws {
        for map in files {
            FileGuard.note(map)
            try map.checkUnchanged()
        }
    }

    /// k for top-k outputs, nil for dense.
    public var k: Int? {
        if case .topK(_, let v) = contents.outputs.layout { return v.shape[2] }
        return nil
    }

    /// Label for an output id ("<id N>" without a vocabulary).
    public func label(_ id: Int) -> String { Vocabulary.label(id, in: contents.vocabulary) }
}

/// The values tensor of outputs: dense values or top-k values.
private func valuesTensor(of outputs: ModelOutputs) -> Tensor {
    switch outputs.layout {
    case .dense(let v): return v
    case .topK(_, let v): return v
    }
}

extension StoreEntry where Contents == LoadedDataset {
    public var count: Int { contents.kind == .paired ? contents.examples.count : contents.inputs.count }

    /// Ids usable for matching: nil for input lists and for datasets whose ids were
    /// made from line numbers.
    public var matchableIds: [String]? {
        contents.kind == .paired && !contents.idsSynthesized ? contents.examples.map(\.id) : nil
    }
}

extension LoadedDataset {
    /// Examples (a paired dataset) or inputs (an input list) already in memory. Inline
    /// examples count `full` and `simplified` plus `Example.overheadBytes` each against
    /// the budget; inputs their `residentBytes`.
    static func inline(examples: [Example]? = nil, inputs: [InputRecord]? = nil) -> LoadedDataset {
        let bytes =
            (examples ?? []).reduce(0) { $0 + $1.full.utf8.count + $1.simplified.utf8.count + Example.overheadBytes }
            + (inputs ?? []).reduce(0) { $0 + $1.residentBytes }
        return LoadedDataset(
            kind: examples != nil ? .paired : .inputs, format: nil, examples: examples ?? [], inputs: inputs ?? [],
            idsSynthesized: false, warnings: [], bytes: bytes)
    }
}

/// Any kind of named entry. Teachers, datasets and models share one namespace.
public enum RegistryEntry: Sendable {
    case teacher(TeacherEntry)
    case dataset(DatasetEntry)
    case model(ModelEntry)

    public var name: String {
        switch self {
        case .teacher(let t): return t.name
        case .dataset(let d): return d.name
        case .model(let m): return m.name
        }
    }

    public var residentBytes: Int {
        switch self {
        case .teacher(let t): return t.residentBytes
        case .dataset(let d): return d.bytes
        case .model(let m): return m.residentBytes
        }
    }

    public var mappedBytes: Int {
        switch self {
        case .teacher(let t): return t.mappedBytes
        case .dataset: return 0
        case .model(let m): return m.mappedBytes
        }
    }

    /// What the entry is, as errors name it ("'x' is a model, not a teacher").
    public var typeName: String {
        switch self {
        case .teacher: return "teacher"
        case .dataset: return "dataset"
        case .model: return "model"
        }
    }

    /// Its line in `Registry.list()`.
    public var summary: EntrySummary {
        switch self {
        case .teacher(let t):
            return EntrySummary(
                name: t.name, type: .teacher, count: t.outputs.examples, residentBytes: t.residentBytes,
                mappedBytes: t.mappedBytes, path: t.source?.path)
        case .dataset(let d):
            return EntrySummary(name: d.name, type: .dataset, count: d.count, residentBytes: d.bytes, mappedBytes: 0, path: d.source?.path)
        case .model(let m):
            return EntrySummary(
                name: m.name, type: .model, count: 0, residentBytes: m.residentBytes, mappedBytes: m.mappedBytes, path: m.source?.path)
        }
    }

    /// What the workspace remembers of it: its file, with the format actually read; nil
    /// for entries that were not read from a file.
    var workspaceItem: Workspace.Item? {
        switch self {
        case .teacher(let t):
            return t.source.map { .teacher(name: t.name, source: TeacherSource(path: $0.path, format: t.format, options: $0.options)) }
        case .dataset(let d):
            return d.source.map {
                .dataset(name: d.name, source: DatasetSource(path: $0.path, kind: $0.kind, format: d.format, options: $0.options))
            }
        case .model(let m):
            return m.source.map {
                .model(name: m.name, source: ModelSource(path: $0.path, format: m.contents.format, tokenizer: $0.tokenizer))
            }
        }
    }
}

/// One line of `Registry.list()`.
public struct EntrySummary: Sendable, Equatable {
    public enum EntryType: String, Sendable { case teacher, dataset, model }
    public let name: String
    public let type: EntryType
    /// Examples (teacher rows, dataset examples or inputs); 0 for a model.
    public let count: Int
    public let residentBytes: Int
    public let mappedBytes: Int
    /// Source path; nil for inline data.
    public let path: String?
}

/// A page of a dataset.
public struct DatasetPage: Sendable {
    public let total: Int
    public let offset: Int
    public let kind: DatasetKind
    /// For paired datasets.
    public let examples: [Example]
    /// For input lists.
    public let inputs: [InputRecord]
}
