import DistillJSON
import DistillTensor
import Foundation

/// A loaded teacher. Immutable: a caller holding one keeps a consistent view
/// (and keeps its mapped file alive) after the registry replaces or unloads it.
public final class TeacherEntry: Sendable {
    public let name: String
    /// Where it was loaded from; nil for inline data (never persisted).
    public let source: TeacherSource?
    /// The format actually read (detected when the source gave none); nil for inline data.
    public let format: TeacherFormat?
    public let outputs: ModelOutputs
    public let ids: [String]?
    public let vocabulary: [String]?
    public let warnings: [String]
    public let residentBytes: Int
    public let mappedBytes: Int
    public let nonFinite: NonFiniteCounts
    /// The stored dtype of the values ("F16", "<f4", "json", "float32" for inline).
    public let sourceDtype: String
    public let metadata: [String: String]
    public let loadedAt: Date

    public init(
        name: String, source: TeacherSource?, format: TeacherFormat?, outputs: ModelOutputs, ids: [String]?,
        vocabulary: [String]?, warnings: [String], residentBytes: Int, mappedBytes: Int, nonFinite: NonFiniteCounts,
        sourceDtype: String, metadata: [String: String] = [:], loadedAt: Date = Date()
    ) {
        self.name = name
        self.source = source
        self.format = format
        self.outputs = outputs
        self.ids = ids
        self.vocabulary = vocabulary
        self.warnings = warnings
        self.residentBytes = residentBytes
        self.mappedBytes = mappedBytes
        self.nonFinite = nonFinite
        self.sourceDtype = sourceDtype
        self.metadata = metadata
        self.loadedAt = loadedAt
    }

    /// The values tensor (dense values or top-k values).
    public var values: Tensor {
        switch outputs.layout {
        case .dense(let v): return v
        case .topK(_, let v): return v
        }
    }

    /// The mapped files this teacher's tensors read from (safetensors, .npy); empty
    /// when everything was copied into memory (JSON Lines, inline data).
    public var files: [MappedFile] {
        var tensors = [values]
        if case .topK(let i, _) = outputs.layout { tensors.append(i) }
        if let m = outputs.mask { tensors.append(m) }
        var out: [MappedFile] = []
        for t in tensors {
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
        if case .topK(_, let v) = outputs.layout { return v.shape[2] }
        return nil
    }

    /// Label for an output id ("<id N>" without a vocabulary).
    public func label(_ id: Int) -> String { Vocabulary.label(id, in: vocabulary) }

    /// The `info` object: {type: "teacher", name, kind, layout ("dense"|"topk"),
    /// examples, positions, vocab, k (top-k only), dtype (ScalarType raw value),
    /// sourceDtype, hasMask, idCount, vocabularyCount, residentBytes, mappedBytes,
    /// nonFinite {nan, posInf, negInf}, source {path, format, options} or null,
    /// warnings, loadedAt (seconds since 1970)}.
    public var info: JSON {
        let o = JSON.object()
        o["type"] = "teacher"
        o["name"] = JSON(name)
        o["kind"] = JSON(outputs.kind.rawValue)
        o["layout"] = JSON(outputs.isTopK ? "topk" : "dense")
        o["examples"] = JSON(outputs.examples)
        o["positions"] = JSON(outputs.positions)
        o["vocab"] = JSON(outputs.vocab)
        if let k { o["k"] = JSON(k) }
        o["dtype"] = JSON(values.dtype.rawValue)
        o["sourceDtype"] = JSON(sourceDtype)
        o["hasMask"] = JSON(outputs.mask != nil)
        o["idCount"] = ids.map { JSON($0.count) } ?? .null
        o["vocabularyCount"] = vocabulary.map { JSON($0.count) } ?? .null
        o["residentBytes"] = JSON(residentBytes)
        o["mappedBytes"] = JSON(mappedBytes)
        o["nonFinite"] = JSON.object([
            ("nan", JSON(nonFinite.nan)), ("posInf", JSON(nonFinite.posInf)), ("negInf", JSON(nonFinite.negInf)),
        ])
        if let source {
            o["source"] = JSON.object([
                ("path", JSON(source.path)), ("format", format.map { JSON($0.rawValue) } ?? .null),
                ("options", source.options.json),
            ])
        } else {
            o["source"] = .null
        }
        o["warnings"] = JSON.array(warnings)
        o["loadedAt"] = JSON(loadedAt.timeIntervalSince1970)
        return o
    }
}

/// A loaded dataset. Immutable, like `TeacherEntry`.
public final class DatasetEntry: Sendable {
    public let name: String
    public let kind: DatasetKind
    public let source: DatasetSource?
    public let format: DatasetFormat?
    /// Paired examples (empty for input lists).
    public let examples: [Example]
    /// Inputs (empty for paired datasets).
    public let inputs: [InputRecord]
    public let idsSynthesized: Bool
    public let warnings: [String]
    public let bytes: Int
    public let loadedAt: Date

    public init(
        name: String, kind: DatasetKind, source: DatasetSource?, format: DatasetFormat?, examples: [Example],
        inputs: [InputRecord], idsSynthesized: Bool, warnings: [String], bytes: Int, loadedAt: Date = Date()
    ) {
        self.name = name
        self.kind = kind
        self.source = source
        self.format = format
        self.examples = examples
        self.inputs = inputs
        self.idsSynthesized = idsSynthesized
        self.warnings = warnings
        self.bytes = bytes
        self.loadedAt = loadedAt
    }

    public var count: Int { kind == .paired ? examples.count : inputs.count }

    /// Ids usable for matching: nil for input lists and for datasets whose ids were
    /// made from line numbers.
    public var matchableIds: [String]? {
        kind == .paired && !idsSynthesized ? examples.map(\.id) : nil
    }

    /// The `info` object: {type: "dataset", name, kind, format, count,
    /// idsSynthesized, bytes, source {path, kind, format, options} or null,
    /// warnings, loadedAt}.
    public var info: JSON {
        let o = JSON.object()
        o["type"] = "dataset"
        o["name"] = JSON(name)
        o["kind"] = JSON(kind.rawValue)
        o["format"] = format.map { JSON($0.rawValue) } ?? .null
        o["count"] = JSON(count)
        o["idsSynthesized"] = JSON(idsSynthesized)
        o["bytes"] = JSON(bytes)
        if let source {
            o["source"] = JSON.object([
                ("path", JSON(source.path)), ("kind", JSON(source.kind.rawValue)),
                ("format", format.map { JSON($0.rawValue) } ?? .null), ("options", source.options.json),
            ])
        } else {
            o["source"] = .null
        }
        o["warnings"] = JSON.array(warnings)
        o["loadedAt"] = JSON(loadedAt.timeIntervalSince1970)
        return o
    }
}

/// Either kind of entry. Teachers and datasets share one namespace.
public enum RegistryEntry: Sendable {
    case teacher(TeacherEntry)
    case dataset(DatasetEntry)

    public var name: String {
        switch self {
        case .teacher(let t): return t.name
        case .dataset(let d): return d.name
        }
    }

    public var residentBytes: Int {
        switch self {
        case .teacher(let t): return t.residentBytes
        case .dataset(let d): return d.bytes
        }
    }

    public var mappedBytes: Int {
        switch self {
        case .teacher(let t): return t.mappedBytes
        case .dataset: return 0
        }
    }

    public var info: JSON {
        switch self {
        case .teacher(let t): return t.info
        case .dataset(let d): return d.info
        }
    }
}

/// One line of `Registry.list()`.
public struct EntrySummary: Sendable, Equatable {
    public enum EntryType: String, Sendable { case teacher, dataset }
    public let name: String
    public let type: EntryType
    /// Examples (teacher rows, dataset examples or inputs).
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
    /// For paired datasets.
    public let examples: [Example]
    /// For input lists.
    public let inputs: [InputRecord]
}

/// How teacher rows line up with dataset examples.
public struct Matching: Sendable, Equatable {
    public enum Method: String, Sendable { case id, order }
    public struct Pair: Sendable, Equatable {
        public let teacherRow: Int
        public let example: Int
    }
    public let method: Method
    /// In dataset order (by id) or row order (by order).
    public let pairs: [Pair]
    /// Teacher rows with no example (ascending).
    public let unmatchedTeacherRows: [Int]
    /// Dataset examples with no teacher row (ascending).
    public let unmatchedExamples: [Int]

    public var isComplete: Bool { unmatchedTeacherRows.isEmpty && unmatchedExamples.isEmpty }

    public var json: JSON {
        JSON.object([
            ("method", JSON(method.rawValue)),
            ("matched", JSON(pairs.count)),
            ("unmatchedTeacherRows", JSON.array(unmatchedTeacherRows)),
            ("unmatchedExamples", JSON.array(unmatchedExamples)),
        ])
    }
}

/// Pairs teacher rows with dataset examples: by id when both sides have ids
/// (teacher ids given and the dataset's ids were not made from line numbers),
/// otherwise by order (row i ↔ example i, the longer side's tail unmatched).
public func match(teacherIds: [String]?, datasetIds: [String]?, teacherRows: Int, datasetCount: Int) -> Matching {
    if let t = teacherIds, let d = datasetIds {
        var rowOf: [String: Int] = [:]
        for (i, id) in t.enumerated() where rowOf[id] == nil { rowOf[id] = i }
        var pairs: [Matching.Pair] = []
        var used = [Bool](repeating: false, count: t.count)
        var unmatchedExamples: [Int] = []
        for (j, id) in d.enumerated() {
            if let i = rowOf[id], !used[i] {
                used[i] = true
                pairs.append(Matching.Pair(teacherRow: i, example: j))
            } else {
                unmatchedExamples.append(j)
            }
        }
        let unmatchedRows = used.indices.filter { !used[$0] }
        return Matching(method: .id, pairs: pairs, unmatchedTeacherRows: unmatchedRows, unmatchedExamples: unmatchedExamples)
    }
    let m = min(teacherRows, datasetCount)
    return Matching(
        method: .order, pairs: (0..<m).map { Matching.Pair(teacherRow: $0, example: $0) },
        unmatchedTeacherRows: Array(m..<max(m, teacherRows)), unmatchedExamples: Array(m..<max(m, datasetCount)))
}

/// `match` for registry entries.
public func match(teacherIds: [String]?, dataset: DatasetEntry, teacherRows: Int? = nil) -> Matching {
    match(
        teacherIds: teacherIds, datasetIds: dataset.matchableIds, teacherRows: teacherRows ?? teacherIds?.count ?? 0,
        datasetCount: dataset.count)
}

/// `match` for a teacher entry and a dataset entry.
public func match(teacher: TeacherEntry, dataset: DatasetEntry) -> Matching {
    match(teacherIds: teacher.ids, dataset: dataset, teacherRows: teacher.outputs.examples)
}
