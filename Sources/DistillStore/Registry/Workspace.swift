import DistillJSON
import DistillSystem
import DistillTensor
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The file that remembers what was loaded, so a restart can load it again.
///
/// Format (JSON, keys sorted, pretty-printed):
/// {"version": 1,
///  "teachers": [{"name", "path", "format", "options": {...TeacherOptions}}],
///  "datasets": [{"name", "path", "kind", "format", "options": {...DatasetOptions}}],
///  "models": [{"name", "path", "format", "tokenizer"}]}   (written only when a model is loaded)
/// Paths are absolute. Entries are sorted by name. Written to a temporary file
/// in the same directory, fsync'ed, renamed over the old file, then the directory
/// is fsync'ed. Inline entries are never written.
///
/// The temporary file is named `<path>.tmp.<pid>.<random>`; one left behind by a
/// writer that was killed is removed at the next start (`removeStaleTemporaries`).
public struct Workspace: Sendable {
    public let path: String

    public enum Item: Sendable, Equatable {
        case teacher(name: String, source: TeacherSource)
        case dataset(name: String, source: DatasetSource)
        case model(name: String, source: ModelSource)

        public var name: String {
            switch self {
            case .teacher(let n, _), .dataset(let n, _), .model(let n, _): return n
            }
        }

        var typeName: String {
            switch self {
            case .teacher: return "teacher"
            case .dataset: return "dataset"
            case .model: return "model"
            }
        }
    }

    public static let version = 1

    public init(path: String) {
        self.path = absolutePath(path)
    }

    public func encode(_ items: [Item]) -> JSON {
        let teachers = JSON.array()
        let datasets = JSON.array()
        let models = JSON.array()
        for item in items.sorted(by: { $0.name < $1.name }) {
            switch item {
            case .teacher(let name, let s):
                teachers.append(
                    JSON.object([
                        ("name", JSON(name)), ("path", JSON(s.path)),
                        ("format", s.format.map { JSON($0.rawValue) } ?? .null), ("options", s.options.json),
                    ]))
            case .dataset(let name, let s):
                datasets.append(
                    JSON.object([
                        ("name", JSON(name)), ("path", JSON(s.path)), ("kind", JSON(s.kind.rawValue)),
                        ("format", s.format.map { JSON($0.rawValue) } ?? .null), ("options", s.options.json),
                    ]))
            case .model(let name, let s):
                models.append(
                    JSON.object([
                        ("name", JSON(name)), ("path", JSON(s.path)), ("format", s.format.map { JSON($0) } ?? .null),
                        ("tokenizer", s.tokenizer.map { JSON($0) } ?? .null),
                    ]))
            }
        }
        // A workspace without models keeps the shape earlier versions wrote.
        var members: [(String, JSON)] = [("version", JSON(Self.version)), ("teachers", teachers), ("datasets", datasets)]
        if models.count > 0 { members.append(("models", models)) }
        return JSON.object(members)
    }

    // MARK: - Options as the file keeps them

    /// Reads teacher options back; a member the workspace never writes, or one of the
    /// wrong type, refuses the entry.
    static func teacherOptions(_ json: JSON?) throws -> TeacherOptions {
        var o = TeacherOptions()
        for (key, value) in try members(json, of: "teacher") {
            switch key {
            case "kind": o.kind = try value.stringValue.flatMap(OutputKind.init(rawValue:)) ?? badOption(key)
            case "allowNonFinite": o.allowNonFinite = try value.boolValue ?? badOption(key)
            case "vocabSize": o.vocabSize = try value.intValue.flatMap { $0 > 0 ? $0 : nil } ?? badOption(key)
            case "vocabulary": o.vocabulary = try value.stringValue ?? badOption(key)
            case "indices": o.indices = try value.stringValue ?? badOption(key)
            case "mask": o.mask = try value.stringValue ?? badOption(key)
            default: throw StoreError(.unknownFormat, "unknown teacher option '\(key)'")
            }
        }
        return o
    }

    /// Reads dataset options back, as `teacherOptions`.
    static func datasetOptions(_ json: JSON?) throws -> DatasetOptions {
        var o = DatasetOptions()
        for (key, value) in try members(json, of: "dataset") {
            switch key {
            case "fields":
                for (canonical, name) in value.members ?? [] {
                    guard DatasetOptions.canonicalFields.contains(canonical), let name = name.stringValue else { return try badOption(key) }
                    o.fields[canonical] = name
                }
            case "delimiter":
                guard let s = value.stringValue, s.utf8.count == 1, let b = s.utf8.first, DatasetOptions.isDelimiter(b) else {
                    return try badOption(key)
                }
                o.delimiter = b
            default: throw StoreError(.unknownFormat, "unknown dataset option '\(key)'")
            }
        }
        return o
    }

    private static func members(_ json: JSON?, of what: String) throws -> [(key: String, value: JSON)] {
        guard let json, !json.isNull else { return [] }
        guard let members = json.members else {
            throw StoreError(.unknownFormat, "\(what) options must be an object, got \(json.kindDescription)")
        }
        return members
    }

    private static func badOption<T>(_ key: String) throws -> T {
        throw StoreError(.unknownFormat, "option \(key) has a value the workspace never writes")
    }

    /// What the file system says `path` is: nil when nothing is there, else "a regular
    /// file", "a directory", "a FIFO", ... (following symbolic links).
    static func fileKind(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return "a regular file"
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        default: return "not a regular file"
        }
    }

    /// Checks at start-up that the workspace can be kept: the path is a regular file
    /// or absent, and its directory accepts a new file (probed by creating and
    /// removing one). Throws a message that names the path and the reason.
    public func checkUsable() throws {
        if let kind = Self.fileKind(path), kind != "a regular file" {
            throw StoreError(.unreadable, "the workspace \(path) is \(kind), not a regular file")
        }
        let probe = "\(path).tmp.\(getpid()).0"
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw StoreError(
                .unreadable,
                "the workspace \(path) cannot be written: creating a file in \(directory) failed: \(String(cString: strerror(errno)))")
        }
        close(fd)
        unlink(probe)
    }

    var directory: String {
        let dir = (path as NSString).deletingLastPathComponent
        return dir.isEmpty ? "." : dir
    }

    /// Removes `<path>.tmp.<pid>.<digits>` files whose writer is gone (no process with
    /// that pid, or the pid is ours, which had written nothing yet at start). Returns
    /// the names removed. Files of live processes and every other name are left alone.
    @discardableResult
    public func removeStaleTemporaries() -> [String] {
        let base = (path as NSString).lastPathComponent + ".tmp."
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var removed: [String] = []
        for name in names where name.hasPrefix(base) {
            let parts = name.dropFirst(base.count).split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 2, let pid = pid_t(parts[0]), pid > 0, UInt32(parts[1]) != nil else { continue }
            let alive = pid != getpid() && (kill(pid, 0) == 0 || errno == EPERM)
            guard !alive else { continue }
            let full = directory + "/" + name
            var st = stat()
            guard lstat(full, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, unlink(full) == 0 else { continue }
            removed.append(full)
        }
        return removed
    }

    /// Renames the workspace file to the first free name of `<path>.bad`,
    /// `<path>.bad.1`, `<path>.bad.2`, ..., so no earlier set-aside is overwritten.
    /// Returns the new name (nil if nothing was moved).
    @discardableResult
    func setAside() -> String? {
        for n in 0..<10_000 {
            let target = n == 0 ? path + ".bad" : path + ".bad.\(n)"
            // link() fails rather than replace: no race with another set-aside.
            if link(path, target) == 0 {
                unlink(path)
                return target
            }
            if errno == EEXIST { continue }
            // A file system without hard links: rename, having checked the name is free.
            if access(target, F_OK) == 0 { continue }
            return rename(path, target) == 0 ? target : nil
        }
        return nil
    }

    public func save(_ items: [Item]) throws {
        var bytes = encode(items).serialized(sortKeys: true, pretty: true)
        bytes.append(0x0A)
        let tmp = "\(path).tmp.\(getpid()).\(UInt32.random(in: 1...UInt32.max))"
        do {
            let file = try FileReplacement(path: path, temporary: tmp)
            try bytes.withUnsafeBytes(file.write)
            try file.commit(syncingDirectory: true)
        } catch let e as FileReplacement.Failure {
            switch e.step {
            case .create: throw fileError(.unreadable, tmp, "cannot create: \(e.reason)")
            case .write: throw fileError(.unreadable, tmp, "cannot write: \(e.reason)")
            case .rename: throw fileError(.unreadable, path, "cannot rename into place: \(e.reason)")
            }
        }
    }

    /// Reads the items; a missing file is an empty workspace. A file that is not a
    /// workspace is set aside (`setAside`: the next save must not destroy it) and the
    /// error is thrown; a path that is not a regular file (a directory, a FIFO) is
    /// left alone and refused. Items that do not decode are skipped with a warning,
    /// and so is an item whose name an earlier item already has.
    public func read() throws -> (items: [Item], warnings: [String]) {
        guard let kind = Self.fileKind(path) else { return ([], []) }
        guard kind == "a regular file" else {
            throw StoreError(.unreadable, "the workspace \(path) is \(kind), not a regular file")
        }
        let json: JSON
        do {
            let map = try MappedFile(path: path)
            json = try map.withBytes { try JSON.parse($0) }
            guard json.isObject, let v = json["version"]?.intValue else {
                throw fileError(.malformedHeader, path, "not a workspace file (no version)")
            }
            guard v == Self.version else {
                throw fileError(.malformedHeader, path, "workspace version \(v) is not supported (expected \(Self.version))")
            }
        } catch {
            let moved = setAside()
            let reason = (error as? StoreError)?.message ?? "\(error)"
            throw StoreError(.malformedHeader, "\(reason); set aside as \(moved ?? "(nothing: the rename failed)")", file: path)
        }
        var items: [Item] = []
        var warnings: [String] = []
        for t in json["teachers"]?.arrayValue ?? [] {
            do {
                guard let name = t["name"]?.stringValue, let p = t["path"]?.stringValue else {
                    throw StoreError(.malformedHeader, "a teacher lacks name or path")
                }
                var format: TeacherFormat?
                if let f = t["format"]?.stringValue {
                    guard let ff = TeacherFormat(rawValue: f) else { throw StoreError(.unknownFormat, "unknown format '\(f)'") }
                    format = ff
                }
                items.append(
                    .teacher(name: name, source: TeacherSource(path: p, format: format, options: try Self.teacherOptions(t["options"]))))
            } catch {
                warnings.append("\(path): skipped a teacher entry: \(error)")
            }
        }
        for d in json["datasets"]?.arrayValue ?? [] {
            do {
                guard let name = d["name"]?.stringValue, let p = d["path"]?.stringValue else {
                    throw StoreError(.malformedHeader, "a dataset lacks name or path")
                }
                let kind = d["kind"]?.stringValue.flatMap(DatasetKind.init(rawValue:)) ?? .paired
                var format: DatasetFormat?
                if let f = d["format"]?.stringValue {
                    guard let ff = DatasetFormat(rawValue: f) else { throw StoreError(.unknownFormat, "unknown format '\(f)'") }
                    format = ff
                }
                items.append(
                    .dataset(
                        name: name,
                        source: DatasetSource(path: p, kind: kind, format: format, options: try Self.datasetOptions(d["options"]))))
            } catch {
                warnings.append("\(path): skipped a dataset entry: \(error)")
            }
        }
        for m in json["models"]?.arrayValue ?? [] {
            guard let name = m["name"]?.stringValue, let p = m["path"]?.stringValue,
                m["format"].map({ $0.isNull || $0.stringValue != nil }) ?? true,
                m["tokenizer"].map({ $0.isNull || $0.stringValue != nil }) ?? true
            else {
                warnings.append("\(path): skipped a model entry: it lacks name or path, or has a member of the wrong type")
                continue
            }
            items.append(
                .model(name: name, source: ModelSource(path: p, format: m["format"]?.stringValue, tokenizer: m["tokenizer"]?.stringValue)))
        }
        var seen: [String: String] = [:]
        var unique: [Item] = []
        for item in items {
            if let first = seen[item.name] {
                warnings.append(
                    "\(path): the name '\(item.name)' appears more than once (a \(first) and a \(item.typeName)); "
                        + "kept the \(first), skipped the \(item.typeName), which the next write drops")
                continue
            }
            seen[item.name] = item.typeName
            unique.append(item)
        }
        return (unique, warnings)
    }
}
