import DistillSync
import DistillTensor
import Foundation

/// Named teachers and datasets, shared by all sessions, and the one way a file a request
/// names is loaded.
///
/// Thread-safe: one lock guards the dictionary and the budget's counters; parsing happens
/// outside it, so loads run in parallel and readers never wait on a load. Entries are
/// immutable classes: a caller holding one keeps a consistent view after it is replaced or
/// unloaded (a mapped file is unmapped when its last tensor goes).
///
/// Every failing call throws a `StoreError` and changes nothing: a new entry is
/// parsed and validated fully before it is swapped in.
///
/// ## Paths
/// A path is a file, or a builtin (`builtin:demo`, see `Builtins`): the registry resolves
/// the scheme, so callers pass whatever the request named. A builtin has no file, so a
/// format or options given with one are refused, naming the member (`.notAFile`).
///
/// ## Anonymous entries
/// A request may name a file for its own use (a student `{"path": ...}` in an analysis).
/// `loadAnonymousTeacher` and `loadAnonymousDataset` read it as a named load would, under
/// the same budget, but give it no name: it is not listed, not persisted and not found by
/// name. It counts against the budget for as long as the entry lives, and the request's
/// `FileGuard.run` keeps it alive until the request ends, so its memory is accounted for
/// while the request may use it and given back as the request ends.
///
/// ## Memory budget
/// With `memoryBudget` set, the budget covers resident + mapped bytes of all
/// entries, named and anonymous (mapped bytes are counted in full even though the kernel
/// pages them in lazily). A load is refused up front with `.budgetExceeded`, before its
/// data is read, when the in-use total plus its estimate would pass the budget. The
/// estimate is the size of the file(s) it names (main file, plus vocabulary,
/// indices and mask files). Loads in flight reserve their estimate. When
/// replacing, the old entry's bytes are not counted (it is released on success,
/// though a reader may still hold it). After parsing, the actual size is checked
/// again.
///
/// ## Workspace
/// With a `workspace`, every successful load or unload of a file-backed entry
/// rewrites the workspace file; inline entries (`addTeacher`, `addDataset`), builtins and
/// anonymous entries are never persisted. Entries that failed to restore stay in the
/// workspace file until they are loaded again or unloaded, so a file that is briefly
/// missing does not lose its entry.
public final class Registry: Sendable {
    public let memoryBudget: Int?
    public let workspace: Workspace?
    /// Reads model files (`loadModel`); nil: this registry holds no models.
    public let modelLoader: ModelLoader?

    private let state = Mutex(State())
    /// Held while the workspace file is written, so writes never interleave; holds the last
    /// failure to write it (nil after a write that succeeded).
    private let saving = Mutex<String?>(nil)
    private let workspaceErrorHandler = Mutex<(@Sendable (String) -> Void)?>(nil)

    private struct State {
        var entries: [String: RegistryEntry] = [:]
        /// Estimates of the loads in flight.
        var reserved = 0
        /// Bytes of the anonymous entries alive (their leases).
        var anonymousBytes = 0
        /// Persisted entries that failed to restore.
        var unrestored: [String: Workspace.Item] = [:]

        /// What counts against the budget now: named entries (but `excluding`, which a load
        /// replaces), loads in flight and anonymous entries.
        func inUse(excluding name: String?) -> Int {
            let named = entries.reduce(0) { sum, kv in kv.key == name ? sum : sum + kv.value.residentBytes + kv.value.mappedBytes }
            return named + reserved + anonymousBytes
        }
    }

    /// Told (with the reason) each time the workspace file cannot be written.
    public var onWorkspaceError: (@Sendable (String) -> Void)? {
        get { workspaceErrorHandler.withLock { $0 } }
        set { workspaceErrorHandler.withLock { $0 = newValue } }
    }

    public init(memoryBudget: Int? = nil, workspace: Workspace? = nil, modelLoader: ModelLoader? = nil) {
        self.memoryBudget = memoryBudget
        self.workspace = workspace
        self.modelLoader = modelLoader
    }

    // MARK: - Loading by path

    /// Loads the teacher a request names under `name`: a file or a builtin. `format` and
    /// `options` are what the request gave (nil: not given); a builtin takes neither.
    /// `progress`, `isCancelled` and `commitIf` as in `loadTeacher(name:source:)`.
    @discardableResult
    public func loadTeacher(
        name: String, path: String, format: TeacherFormat? = nil, options: TeacherOptions? = nil, replace: Bool = false,
        progress: ((Double) -> Void)? = nil, isCancelled: (() -> Bool)? = nil, commitIf: (() -> Bool)? = nil
    ) throws -> TeacherEntry {
        if try isBuiltin(path) {
            try Builtins.refuseFileSettings(format: format, options: options, of: "teacher")
            let builtin = try Builtins.teacher(path)
            return try addTeacher(
                name: name, outputs: builtin.outputs, ids: builtin.ids, vocabulary: builtin.labels, replace: replace)
        }
        return try loadTeacher(
            name: name, source: TeacherSource(path: path, format: format, options: options ?? TeacherOptions()), replace: replace,
            progress: progress, isCancelled: isCancelled, commitIf: commitIf)
    }

    /// Loads the dataset a request names under `name`: a file, read as `kind`, or a builtin
    /// (whose own kind it keeps). `format` and `options` as in `loadTeacher(name:path:...)`.
    @discardableResult
    public func loadDataset(
        name: String, path: String, kind: DatasetKind = .paired, format: DatasetFormat? = nil, options: DatasetOptions? = nil,
        replace: Bool = false, commitIf: (() -> Bool)? = nil
    ) throws -> DatasetEntry {
        if try isBuiltin(path) {
            try Builtins.refuseFileSettings(format: format, options: options, of: "dataset")
            return try add(name: name, Builtins.dataset(path), replace: replace)
        }
        return try loadDataset(
            name: name, source: DatasetSource(path: path, kind: kind, format: format, options: options ?? DatasetOptions()),
            replace: replace, commitIf: commitIf)
    }

    /// Reads the teacher a request names for its own use (see Anonymous entries): a file or
    /// a builtin, counted against the budget while the entry lives.
    public func loadAnonymousTeacher(
        path: String, format: TeacherFormat? = nil, options: TeacherOptions? = nil, isCancelled: (() -> Bool)? = nil
    ) throws -> TeacherEntry {
        if try isBuiltin(path) {
            try Builtins.refuseFileSettings(format: format, options: options, of: "teacher")
            let builtin = try Builtins.teacher(path)
            let bytes = TeacherEntry.inlineBytes(builtin.outputs)
            let ticket = try reserve(nil, label: path, estimate: bytes, replace: false)
            return keptForTheRequest(
                TeacherEntry(outputs: builtin.outputs, ids: builtin.ids, vocabulary: builtin.labels, bytes: bytes, lease: lease(ticket)))
        }
        let source = try absolute(TeacherSource(path: path, format: format, options: options ?? TeacherOptions()))
        let ticket = try reserve(nil, label: source.path, estimate: try estimateBytes(source.files), replace: false)
        defer { unreserve(ticket) }
        let loaded = try TeacherLoader.load(source, isCancelled: isCancelled, budget: memoryBudget)
        let size = loaded.residentBytes + loaded.mappedBytes
        return keptForTheRequest(
            TeacherEntry(name: "", source: source, contents: loaded, lease: try lease(size, label: source.path, ticket: ticket)))
    }

    /// Reads the dataset a request names for its own use, which must be of `kind` (a builtin
    /// of the other kind is refused); counted against the budget while the entry lives.
    public func loadAnonymousDataset(
        path: String, kind: DatasetKind, format: DatasetFormat? = nil, options: DatasetOptions? = nil
    ) throws -> DatasetEntry {
        if try isBuiltin(path) {
            try Builtins.refuseFileSettings(format: format, options: options, of: "dataset")
            let builtin = try Builtins.dataset(path, kind: kind)
            let ticket = try reserve(nil, label: path, estimate: builtin.bytes, replace: false)
            return keptForTheRequest(DatasetEntry(name: "", source: nil, contents: builtin, lease: lease(ticket)))
        }
        let source = try absolute(DatasetSource(path: path, kind: kind, format: format, options: options ?? DatasetOptions()))
        let ticket = try reserve(nil, label: source.path, estimate: try estimateBytes([source.path]), replace: false)
        defer { unreserve(ticket) }
        let loaded = try DatasetLoader.load(source, budget: memoryBudget)
        return keptForTheRequest(
            DatasetEntry(name: "", source: source, contents: loaded, lease: try lease(loaded.bytes, label: source.path, ticket: ticket)))
    }

    // MARK: - Loading files and inline data

    /// Loads a teacher file under `name`. `progress` and `isCancelled` as in `TeacherLoader.load`.
    /// `commitIf` is asked, under the registry's lock, right before the entry is
    /// swapped in: false (the request was answered as cancelled meanwhile) throws
    /// `CancellationError` and changes nothing.
    @discardableResult
    public func loadTeacher(
        name: String, source: TeacherSource, replace: Bool = false, progress: ((Double) -> Void)? = nil,
        isCancelled: (() -> Bool)? = nil, commitIf: (() -> Bool)? = nil
    ) throws -> TeacherEntry {
        let source = try absolute(source)
        let ticket = try reserve(name, label: name, estimate: try estimateBytes(source.files), replace: replace)
        defer { unreserve(ticket) }
        let loaded = try TeacherLoader.load(source, progress: progress, isCancelled: isCancelled, budget: memoryBudget)
        let entry = TeacherEntry(name: name, source: source, contents: loaded)
        try commit(.teacher(entry), ticket: ticket, replace: replace, persist: true, commitIf: commitIf)
        return entry
    }

    /// Adds teacher outputs that are already in memory (inline request data). Not persisted.
    @discardableResult
    public func addTeacher(
        name: String, outputs: ModelOutputs, ids: [String]? = nil, vocabulary: [String]? = nil, replace: Bool = false,
        warnings: [String] = []
    ) throws -> TeacherEntry {
        if case .topK(let indices, _) = outputs.layout {
            try TensorChecks.checkDistinctIndices(indices, path: nil, name: "data.topk.indices")
        }
        let bytes = TeacherEntry.inlineBytes(outputs)
        let ticket = try reserve(name, label: name, estimate: bytes, replace: replace)
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
        let entry = TeacherEntry(
            name: name, outputs: outputs, ids: ids, vocabulary: vocabulary, warnings: warnings, bytes: bytes)
        try commit(.teacher(entry), ticket: ticket, replace: replace, persist: false)
        return entry
    }

    /// Loads a dataset file under `name`; `commitIf` as in `loadTeacher`.
    @discardableResult
    public func loadDataset(
        name: String, source: DatasetSource, replace: Bool = false, commitIf: (() -> Bool)? = nil
    ) throws -> DatasetEntry {
        let source = try absolute(source)
        let ticket = try reserve(name, label: name, estimate: try estimateBytes([source.path]), replace: replace)
        defer { unreserve(ticket) }
        let loaded = try DatasetLoader.load(source, budget: memoryBudget)
        let entry = DatasetEntry(name: name, source: source, contents: loaded)
        try commit(.dataset(entry), ticket: ticket, replace: replace, persist: true, commitIf: commitIf)
        return entry
    }

    /// Adds an in-memory dataset (not persisted). Give `examples` for a paired
    /// dataset or `inputs` for an input list.
    @discardableResult
    public func addDataset(
        name: String, examples: [Example]? = nil, inputs: [InputRecord]? = nil, replace: Bool = false
    ) throws -> DatasetEntry {
        var seen: [String: Int] = [:]
        for e in examples ?? [] {
            if let first = seen[e.id] {
                throw StoreError(
                    .duplicateId, "dataset '\(name)': id '\(e.id)' on line \(e.line) already appeared on line \(first)",
                    line: e.line)
            }
            seen[e.id] = e.line
        }
        return try add(name: name, .inline(examples: examples, inputs: inputs), replace: replace)
    }

    private func add(name: String, _ dataset: LoadedDataset, replace: Bool) throws -> DatasetEntry {
        let ticket = try reserve(name, label: name, estimate: dataset.bytes, replace: replace)
        defer { unreserve(ticket) }
        let entry = DatasetEntry(name: name, source: nil, contents: dataset)
        try commit(.dataset(entry), ticket: ticket, replace: replace, persist: false)
        return entry
    }

    // MARK: - Models

    /// Loads a model file (or directory) under `name` with the registry's `modelLoader`, under
    /// the budget, persisted in the workspace. `progress`, `isCancelled` and `commitIf` as in
    /// `loadTeacher`.
    @discardableResult
    public func loadModel(
        name: String, source: ModelSource, replace: Bool = false, progress: ((Double) -> Void)? = nil,
        isCancelled: (() -> Bool)? = nil, commitIf: (() -> Bool)? = nil
    ) throws -> ModelEntry {
        guard let modelLoader else { throw StoreError(.unknownFormat, "this registry was built without a model loader") }
        try checkPath(source.path, field: "path")
        if let tokenizer = source.tokenizer { try checkPath(tokenizer, field: "options.tokenizer") }
        let source = ModelSource(path: absolutePath(source.path), format: source.format, tokenizer: source.tokenizer.map(absolutePath))
        let ticket = try reserve(name, label: name, estimate: try estimateBytes(source.files), replace: replace)
        defer { unreserve(ticket) }
        let loaded = try modelLoader(source, progress, isCancelled)
        let entry = ModelEntry(name: name, source: source, contents: loaded)
        try commit(.model(entry), ticket: ticket, replace: replace, persist: true, commitIf: commitIf)
        return entry
    }

    /// Adds a model built in memory (an n-gram estimated from a dataset). Not persisted.
    @discardableResult
    public func addModel(name: String, model: any LoadedModel, replace: Bool = false) throws -> ModelEntry {
        let ticket = try reserve(name, label: name, estimate: model.residentBytes + model.mappedBytes, replace: replace)
        defer { unreserve(ticket) }
        let entry = ModelEntry(name: name, source: nil, contents: model)
        try commit(.model(entry), ticket: ticket, replace: replace, persist: false)
        return entry
    }

    public func model(_ name: String) throws -> ModelEntry {
        switch entry(name) {
        case .model(let m)?: return m
        case let other?: throw StoreError(.unknownName, "'\(name)' is a \(other.typeName), not a model")
        case nil: throw StoreError(.unknownName, "no model is loaded under the name '\(name)'")
        }
    }

    /// Removes an entry; `.unknownName` if there is none.
    public func unload(name: String) throws {
        let found = state.withLock { $0.entries.removeValue(forKey: name) != nil || $0.unrestored.removeValue(forKey: name) != nil }
        guard found else { throw StoreError(.unknownName, "nothing is loaded under the name '\(name)'") }
        persist()
    }

    // MARK: - Reading

    public func entry(_ name: String) -> RegistryEntry? {
        state.withLock { $0.entries[name] }
    }

    public func teacher(_ name: String) throws -> TeacherEntry {
        switch entry(name) {
        case .teacher(let t)?: return t
        case let other?: throw StoreError(.unknownName, "'\(name)' is a \(other.typeName), not a teacher")
        case nil: throw StoreError(.unknownName, "no teacher is loaded under the name '\(name)'")
        }
    }

    public func dataset(_ name: String) throws -> DatasetEntry {
        switch entry(name) {
        case .dataset(let d)?: return d
        case let other?: throw StoreError(.unknownName, "'\(name)' is a \(other.typeName), not a dataset")
        case nil: throw StoreError(.unknownName, "no dataset is loaded under the name '\(name)'")
        }
    }

    /// All named entries, sorted by name.
    public func list() -> [EntrySummary] {
        state.withLock { Array($0.entries.values) }.map(\.summary).sorted { $0.name < $1.name }
    }

    /// `limit` examples (or inputs) from `offset`; an offset past the end gives an empty page.
    public func examples(_ name: String, offset: Int = 0, limit: Int = 100) throws -> DatasetPage {
        let d = try dataset(name)
        let start = min(max(0, offset), d.count)
        let end = min(d.count, start + max(0, limit))
        return DatasetPage(
            total: d.count, offset: start, kind: d.kind,
            examples: d.kind == .paired ? Array(d.examples[start..<end]) : [],
            inputs: d.kind == .inputs ? Array(d.inputs[start..<end]) : [])
    }

    /// Resident and mapped bytes of the named entries.
    public var usage: (resident: Int, mapped: Int) {
        state.withLock { $0.entries.values.reduce((0, 0)) { ($0.0 + $1.residentBytes, $0.1 + $1.mappedBytes) } }
    }

    /// Bytes held by anonymous entries that are still alive (requests in progress).
    public var anonymousUsage: Int { state.withLock { $0.anonymousBytes } }

    /// The last failure to write the workspace file, if the latest write failed.
    public var lastWorkspaceError: String? {
        saving.withLock { $0 }
    }

    /// Whether `path` is in the `builtin:` scheme; a path holding NUL is refused first, builtin or not.
    private func isBuiltin(_ path: String) throws -> Bool {
        try checkPath(path, field: "path")
        return Builtins.isBuiltin(path)
    }

    // MARK: - Budget and swapping

    /// A load's reservation: its estimate counts against the budget until it is committed or fails.
    struct Ticket {
        let estimate: Int
    }

    /// The source with its paths checked and made absolute (what is reported and persisted).
    private func absolute(_ source: TeacherSource) throws -> TeacherSource {
        try source.checkPaths()
        return TeacherSource(path: absolutePath(source.path), format: source.format, options: source.options.absolutized())
    }

    private func absolute(_ source: DatasetSource) throws -> DatasetSource {
        try source.checkPaths()
        var source = source
        source.path = absolutePath(source.path)
        return source
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

    /// Reserves `estimate` for a load of `name` (nil: anonymous), described as `label` in a refusal.
    private func reserve(_ name: String?, label: String, estimate: Int, replace: Bool) throws -> Ticket {
        if let name, name.isEmpty { throw StoreError(.unknownName, "an entry needs a non-empty name") }
        return try state.withLock { state in
            if let name, state.entries[name] != nil, !replace {
                throw StoreError(.nameExists, "'\(name)' is already loaded; pass replace: true to replace it")
            }
            if let budget = memoryBudget {
                let used = state.inUse(excluding: replace ? name : nil)
                if used + estimate > budget {
                    throw StoreError(
                        .budgetExceeded,
                        "loading '\(label)' needs about \(estimate) bytes but \(used) of the \(budget)-byte budget are in use",
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

    /// Refuses an entry whose actual size does not fit beside what else is in use (its own
    /// reservation aside), given the state as the lock holds it.
    private func checkActualSize(_ size: Int, label: String, ticket: Ticket, excluding name: String?, in state: State) throws {
        guard let budget = memoryBudget else { return }
        let used = state.inUse(excluding: name) - ticket.estimate
        if used + size > budget {
            throw StoreError(
                .budgetExceeded, "'\(label)' takes \(size) bytes but \(used) of the \(budget)-byte budget are in use",
                numbers: ["budget": budget, "needed": size, "inUse": used])
        }
    }

    private func commit(
        _ entry: RegistryEntry, ticket: Ticket, replace: Bool, persist shouldPersist: Bool, commitIf: (() -> Bool)? = nil
    ) throws {
        let name = entry.name
        try state.withLock { state in
            if state.entries[name] != nil && !replace {
                throw StoreError(.nameExists, "'\(name)' was loaded meanwhile; pass replace: true to replace it")
            }
            try checkActualSize(entry.residentBytes + entry.mappedBytes, label: name, ticket: ticket, excluding: name, in: state)
            if let commitIf, !commitIf() { throw CancellationError() }
            state.entries[name] = entry
            state.unrestored.removeValue(forKey: name)
        }
        if shouldPersist || replace { persist() }
    }

    /// Turns an anonymous load's reservation into a lease of the bytes it actually holds,
    /// refusing them when they do not fit. The caller still releases the ticket.
    private func lease(_ size: Int, label: String, ticket: Ticket) throws -> BudgetLease {
        try state.withLock { state in
            try checkActualSize(size, label: label, ticket: ticket, excluding: nil, in: state)
            state.anonymousBytes += size
        }
        return BudgetLease(bytes: size) { [weak self] bytes in self?.release(bytes) }
    }

    /// A lease of exactly what was reserved (builtins: the estimate is the size, already
    /// checked against the budget when it was reserved).
    private func lease(_ ticket: Ticket) -> BudgetLease {
        state.withLock {
            $0.reserved -= ticket.estimate
            $0.anonymousBytes += ticket.estimate
        }
        return BudgetLease(bytes: ticket.estimate) { [weak self] bytes in self?.release(bytes) }
    }

    private func release(_ bytes: Int) {
        state.withLock { $0.anonymousBytes -= bytes }
    }

    /// Keeps an anonymous entry alive until the request that loaded it ends (see `FileGuard.keep`).
    private func keptForTheRequest<Entry: AnyObject>(_ entry: Entry) -> Entry {
        FileGuard.keep(entry)
        return entry
    }

    // MARK: - Workspace

    /// Writes the workspace file (if any) from the current entries. Failures are
    /// kept in `lastWorkspaceError` rather than thrown: the registry has already changed.
    private func persist() {
        guard let workspace else { return }
        saving.withLock { lastError in
            let items = state.withLock { Array($0.unrestored.values) + $0.entries.values.compactMap(\.workspaceItem) }
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
                case .model(let name, let source): try loadModel(name: name, source: source, replace: true)
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
        let paths: [String]
        switch item {
        case .teacher(_, let s): paths = s.files
        case .dataset(_, let s): paths = [s.path]
        case .model(_, let s): paths = s.files
        }
        for p in paths {
            if let kind = Workspace.fileKind(p), kind != "a regular file" {
                throw fileError(.unreadable, p, "\(kind), not a regular file: not opened")
            }
        }
    }
}

/// Bytes an anonymous entry counts against the registry's budget, given back when the
/// entry (the lease's only owner) goes.
final class BudgetLease: Sendable {
    let bytes: Int
    private let release: @Sendable (Int) -> Void

    init(bytes: Int, release: @escaping @Sendable (Int) -> Void) {
        self.bytes = bytes
        self.release = release
    }

    deinit { release(bytes) }
}
