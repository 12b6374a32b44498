import DistillJSON
import DistillSync
import DistillTensor
import Foundation

/// Named teachers and datasets, shared by all sessions.
///
/// Thread-safe: one lock guards the dictionary; parsing happens outside it, so
/// loads run in parallel and readers never wait on a load. Entries are immutable
/// classes: a caller holding one keeps a consistent view after it is replaced or
/// unloaded (a mapped file is unmapped when its last tensor goes).
///
/// Every failing call throws a `StoreError` and changes nothing: a new entry is
/// parsed and validated fully before it is swapped in.
///
/// ## Memory budget
/// With `memoryBudget` set, the budget covers resident + mapped bytes of all
/// entries (mapped bytes are counted in full even though the kernel pages them in
/// lazily). A load is refused up front with `.budgetExceeded`, before its data is
/// read, when the in-use total plus its estimate would pass the budget. The
/// estimate is the size of the file(s) it names (main file, plus vocabulary,
/// indices and mask files). Loads in flight reserve their estimate. When
/// replacing, the old entry's bytes are not counted (it is released on success,
/// though a reader may still hold it). After parsing, the actual size is checked
/// again.
///
/// ## Workspace
/// With a `workspace`, every successful load or unload of a file-backed entry
/// rewrites the workspace file; inline entries (`addTeacher`, `addDataset`) are
/// never persisted. Entries that failed to restore stay in the workspace file
/// until they are loaded again or unloaded, so a file that is briefly missing
/// does not lose its entry.
public final class Registry: Sendable {
    public let memoryBudget: Int?
    public let workspace: Workspace?

    private let state = Mutex(State())
    /// Held while the workspace file is written, so writes never interleave; holds
    /// the last failure to write it (nil after a write that succeeded).
    private let saving = Mutex<String?>(nil)
    private let workspaceErrorHandler = Mutex<(@Sendable (String) -> Void)?>(nil)

    private struct State {
        var entries: [String: RegistryEntry] = [:]
        /// Bytes reserved by loads in flight.
        var reserved = 0
        /// Persisted entries that failed to restore.
        var unrestored: [String: Workspace.Item] = [:]

        func inUse(excluding name: String?) -> Int {
            entries.reduce(0) { sum, kv in kv.key == name ? sum : sum + kv.value.residentBytes + kv.value.mappedBytes }
        }
    }

    /// Told (with the reason) each time the workspace file cannot be written.
    public var onWorkspaceError: (@Sendable (String) -> Void)? {
        get { workspaceErrorHandler.withLock { $0 } }
        set { workspaceErrorHandler.withLock { $0 = newValue } }
    }

    public init(memoryBudget: Int? = nil, workspace: Workspace? = nil) {
        self.memoryBudget = memoryBudget
        self.workspace = workspace
    }

    // MARK: - Loading

    /// Loads a teacher file under `name`. `progress` and `isCancelled` as in `TeacherLoader.load`.
    /// `commitIf` is asked, under the registry's lock, right before the entry is
    /// swapped in: false (the request was answered as cancelled meanwhile) throws
    /// `CancellationError` and changes nothing.
    @discardableResult
    public func loadTeacher(
        name: String, source: TeacherSource, replace: Bool = false, progress: ((Double) -> Void)? = nil,
        isCancelled: (() -> Bool)? = nil, commitIf: (() -> Bool)? = nil
    ) throws -> TeacherEntry {
        try source.checkPaths()
        var source = source
        source.path = absolutePath(source.path)
        source.options = source.options.absolutized()
        var paths = [source.path]
        paths += [source.options.vocabulary, source.options.indices, source.options.mask].compactMap { $0 }
        let estimate = try estimateBytes(paths)
        let ticket = try reserve(name: name, estimate: estimate, replace: replace)
        defer { unreserve(ticket) }
        let loaded = try TeacherLoader.load(source, progress: progress, isCancelled: isCancelled, budget: memoryBudget)
        let entry = TeacherEntry(
            name: name, source: source, format: loaded.format, outputs: loaded.outputs, ids: loaded.ids,
            vocabulary: loaded.vocabulary, warnings: loaded.warnings, residentBytes: loaded.residentBytes,
            mappedBytes: loaded.mappedBytes, nonFinite: loaded.nonFinite, sourceDtype: loaded.sourceDtype,
            metadata: loaded.metadata)
        try commit(.teacher(entry), ticket: ticket, replace: replace, persist: true, commitIf: commitIf)
        return entry
    }

    /// Adds teacher outputs that are already in memory (inline request data). Not persisted.
    @discardableResult
    public func addTeacher(
        name: String, outputs: ModelOutputs, ids: [String]? = nil, vocabulary: [String]? = nil, replace: Bool = false,
        warnings: [String] = []
    ) throws -> TeacherEntry {
        var bytes = 0
        switch outputs.layout {
        case .dense(let v): bytes = v.storage.byteCount
        case .topK(let i, let v): bytes = i.storage.byteCount + v.storage.byteCount
        }
        bytes += outputs.mask?.storage.byteCount ?? 0
        if case .topK(let indices, _) = outputs.layout {
            try TeacherLoader.checkDistinctIndices(indices, path: nil, name: "data.topk.indices")
        }
        let ticket = try reserve(name: name, estimate: bytes, replace: replace)
        defer { unreserve(ticket) }
        if let ids {
            guard ids.count == outputs.examples else {
                throw StoreError(
                    .shapeMismatch, "teacher '\(name)': \(ids.count) ids for \(outputs.examples) examples",
                    numbers: ["expected": outputs.examples, "actual": ids.count])
            }
            var seen = Set<String>()
            for id in ids where !seen.insert(id).inserted {
                throw StoreError(.duplicateId, "teacher '\(name)': id '\(id)' appears more than once")
            }
        }
        let values: Tensor
        switch outputs.layout {
        case .dense(let v): values = v
        case .topK(_, let v): values = v
        }
        let entry = TeacherEntry(
            name: name, source: nil, format: nil, outputs: outputs, ids: ids, vocabulary: vocabulary, warnings: warnings,
            residentBytes: bytes, mappedBytes: 0, nonFinite: NonFiniteCounts(), sourceDtype: values.dtype.rawValue)
        try commit(.teacher(entry), ticket: ticket, replace: replace, persist: false)
        return entry
    }

    /// Loads a dataset file under `name`; `commitIf` as in `loadTeacher`.
    @discardableResult
    public func loadDataset(
        name: String, source: DatasetSource, replace: Bool = false, commitIf: (() -> Bool)? = nil
    ) throws -> DatasetEntry {
        try source.checkPaths()
        var source = source
        source.path = absolutePath(source.path)
        let estimate = try estimateBytes([source.path])
        let ticket = try reserve(name: name, estimate: estimate, replace: replace)
        defer { unreserve(ticket) }
        let loaded = try DatasetLoader.load(source, budget: memoryBudget)
        let entry = DatasetEntry(
            name: name, kind: loaded.kind, source: source, format: loaded.format, examples: loaded.examples,
            inputs: loaded.inputs, idsSynthesized: loaded.idsSynthesized, warnings: loaded.warnings, bytes: loaded.bytes)
        try commit(.dataset(entry), ticket: ticket, replace: replace, persist: true, commitIf: commitIf)
        return entry
    }

    /// Adds an in-memory dataset (not persisted). Give `examples` for a paired
    /// dataset or `inputs` for an input list.
    @discardableResult
    public func addDataset(
        name: String, examples: [Example]? = nil, inputs: [InputRecord]? = nil, replace: Bool = false
    ) throws -> DatasetEntry {
        let kind: DatasetKind = examples != nil ? .paired : .inputs
        var seen: [String: Int] = [:]
        for e in examples ?? [] {
            if let first = seen[e.id] {
                throw StoreError(
                    .duplicateId, "dataset '\(name)': id '\(e.id)' on line \(e.line) already appeared on line \(first)",
                    line: e.line)
            }
            seen[e.id] = e.line
        }
        let bytes =
            (examples ?? []).reduce(0) { $0 + $1.full.utf8.count + $1.simplified.utf8.count + 64 }
            + (inputs ?? []).reduce(0) { $0 + $1.text.utf8.count + 32 }
        let ticket = try reserve(name: name, estimate: bytes, replace: replace)
        defer { unreserve(ticket) }
        let entry = DatasetEntry(
            name: name, kind: kind, source: nil, format: nil, examples: examples ?? [], inputs: inputs ?? [],
            idsSynthesized: false, warnings: [], bytes: bytes)
        try commit(.dataset(entry), ticket: ticket, replace: replace, persist: false)
        return entry
    }

    /// Removes an entry; `.unknownName` if there is none.
    public func unload(name: String) throws {
        let (removed, pending) = state.withLock { ($0.entries.removeValue(forKey: name), $0.unrestored.removeValue(forKey: name)) }
        guard removed != nil || pending != nil else {
            throw StoreError(.unknownName, "nothing is loaded under the name '\(name)'")
        }
        persist()
    }

    // MARK: - Reading

    public func entry(_ name: String) -> RegistryEntry? {
        state.withLock { $0.entries[name] }
    }

    public func teacher(_ name: String) throws -> TeacherEntry {
        switch entry(name) {
        case .teacher(let t)?: return t
        case .dataset?: throw StoreError(.unknownName, "'\(name)' is a dataset, not a teacher")
        case nil: throw StoreError(.unknownName, "no teacher is loaded under the name '\(name)'")
        }
    }

    public func dataset(_ name: String) throws -> DatasetEntry {
        switch entry(name) {
        case .dataset(let d)?: return d
        case .teacher?: throw StoreError(.unknownName, "'\(name)' is a teacher, not a dataset")
        case nil: throw StoreError(.unknownName, "no dataset is loaded under the name '\(name)'")
        }
    }

    /// All entries, sorted by name.
    public func list() -> [EntrySummary] {
        let all = state.withLock { Array($0.entries.values) }
        return all.map { e in
            switch e {
            case .teacher(let t):
                return EntrySummary(
                    name: t.name, type: .teacher, count: t.outputs.examples, residentBytes: t.residentBytes,
                    mappedBytes: t.mappedBytes, path: t.source?.path)
            case .dataset(let d):
                return EntrySummary(
                    name: d.name, type: .dataset, count: d.count, residentBytes: d.bytes, mappedBytes: 0, path: d.source?.path)
            }
        }.sorted { $0.name < $1.name }
    }

    /// The entry's `info` object (see `TeacherEntry.info`, `DatasetEntry.info`).
    public func info(_ name: String) throws -> JSON {
        guard let e = entry(name) else { throw StoreError(.unknownName, "nothing is loaded under the name '\(name)'") }
        return e.info
    }

    /// `limit` examples (or inputs) from `offset`; an offset past the end gives an empty page.
    public func examples(_ name: String, offset: Int = 0, limit: Int = 100) throws -> DatasetPage {
        let d = try dataset(name)
        let start = min(max(0, offset), d.count)
        let end = min(d.count, start + max(0, limit))
        return DatasetPage(
            total: d.count, offset: start,
            examples: d.kind == .paired ? Array(d.examples[start..<end]) : [],
            inputs: d.kind == .inputs ? Array(d.inputs[start..<end]) : [])
    }

    /// Resident and mapped bytes of all entries.
    public var usage: (resident: Int, mapped: Int) {
        state.withLock { $0.entries.values.reduce((0, 0)) { ($0.0 + $1.residentBytes, $0.1 + $1.mappedBytes) } }
    }

    /// The last failure to write the workspace file, if the latest write failed.
    public var lastWorkspaceError: String? {
        saving.withLock { $0 }
    }

    // MARK: - Budget and swapping

    struct Ticket {
        let estimate: Int
    }

    private func estimateBytes(_ paths: [String]) throws -> Int {
        var total = 0
        for p in paths {
            guard let s = fileSize(p) else {
                // Let the loader raise the precise error (notFound / unreadable).
                _ = try MappedFile(path: p)
                continue
            }
            total += s
        }
        return total
    }

    private func reserve(name: String, estimate: Int, replace: Bool) throws -> Ticket {
        guard !name.isEmpty else { throw StoreError(.unknownName, "an entry needs a non-empty name") }
        return try state.withLock { state in
            if state.entries[name] != nil && !replace {
                throw StoreError(.nameExists, "'\(name)' is already loaded; pass replace: true to replace it")
            }
            if let budget = memoryBudget {
                let used = state.inUse(excluding: replace ? name : nil) + state.reserved
                if used + estimate > budget {
                    throw StoreError(
                        .budgetExceeded,
                        "loading '\(name)' needs about \(estimate) bytes but \(used) of the \(budget)-byte budget are in use",
                        numbers: ["budget": budget, "needed": estimate, "inUse": used])
                }
            }
            state.reserved += estimate
            return Ticket(estimate: estimate)
        }
    }

    private func unreserve(_ t: Ticket) {
        state.withLock { $0.reserved -= t.estimate }
    }

    private func commit(
        _ entry: RegistryEntry, ticket: Ticket, replace: Bool, persist shouldPersist: Bool, commitIf: (() -> Bool)? = nil
    ) throws {
        let name = entry.name
        try state.withLock { state in
            if state.entries[name] != nil && !replace {
                throw StoreError(.nameExists, "'\(name)' was loaded meanwhile; pass replace: true to replace it")
            }
            if let budget = memoryBudget {
                let used = state.inUse(excluding: name) + state.reserved - ticket.estimate
                let size = entry.residentBytes + entry.mappedBytes
                if used + size > budget {
                    throw StoreError(
                        .budgetExceeded, "'\(name)' takes \(size) bytes but \(used) of the \(budget)-byte budget are in use",
                        numbers: ["budget": budget, "needed": size, "inUse": used])
                }
            }
            if let commitIf, !commitIf() { throw CancellationError() }
            state.entries[name] = entry
            state.unrestored.removeValue(forKey: name)
        }
        if shouldPersist || replace { persist() }
    }

    // MARK: - Workspace

    /// Writes the workspace file (if any) from the current entries. Failures are
    /// kept in `lastWorkspaceError` rather than thrown: the registry has already changed.
    private func persist() {
        guard let workspace else { return }
        saving.withLock { lastError in
            let items = state.withLock { state in
                var items: [Workspace.Item] = Array(state.unrestored.values)
                for e in state.entries.values {
                    switch e {
                    case .teacher(let t):
                        if let s = t.source {
                            items.append(
                                .teacher(name: t.name, source: TeacherSource(path: s.path, format: t.format, options: s.options)))
                        }
                    case .dataset(let d):
                        if let s = d.source {
                            items.append(
                                .dataset(
                                    name: d.name, source: DatasetSource(path: s.path, kind: s.kind, format: d.format, options: s.options)))
                        }
                    }
                }
                return items
            }
            do {
                try workspace.save(items)
                lastError = nil
            } catch {
                lastError = "\(error)"
                onWorkspaceError?("\(error)")
            }
        }
    }

    /// Loads every entry in the workspace file. Per-entry failures (and an unreadable
    /// workspace file) come back as warnings; the entries that failed stay in the
    /// workspace file. Entries already loaded under the same name are replaced.
    ///
    /// A path that is not a regular file (a FIFO, a device, a directory) is not
    /// opened: reading it could block the restore, and with it the daemon, forever.
    @discardableResult
    public func restore() -> [String] {
        guard let workspace else { return [] }
        let items: [Workspace.Item]
        var warnings: [String]
        do {
            (items, warnings) = try workspace.read()
        } catch {
            return ["the workspace \(workspace.path) could not be read: \((error as? StoreError)?.message ?? "\(error)")"]
        }
        for item in items {
            do {
                try Self.refuseIrregularFiles(item)
                switch item {
                case .teacher(let name, let source): try loadTeacher(name: name, source: source, replace: true)
                case .dataset(let name, let source): try loadDataset(name: name, source: source, replace: true)
                }
            } catch {
                warnings.append("\(item.typeName) '\(item.name)' was not restored: \(error)")
                state.withLock { state in
                    if state.entries[item.name] == nil { state.unrestored[item.name] = item }
                }
            }
        }
        return warnings
    }

    private static func refuseIrregularFiles(_ item: Workspace.Item) throws {
        var paths: [String]
        switch item {
        case .teacher(_, let s): paths = [s.path] + [s.options.vocabulary, s.options.indices, s.options.mask].compactMap { $0 }
        case .dataset(_, let s): paths = [s.path]
        }
        for p in paths {
            if let kind = Workspace.fileKind(p), kind != "a regular file" {
                throw fileError(.unreadable, p, "\(kind), not a regular file: not opened")
            }
        }
    }
}
