import DistillJSON
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
///  "datasets": [{"name", "path", "kind", "format", "options": {...DatasetOptions}}]}
/// Paths are absolute. Entries are sorted by name. Written to a temporary file
/// in the same directory, fsync'ed, renamed over the old file, then the directory
/// is fsync'ed. Inline entries are never written.
public struct Workspace: Sendable {
    public let path: String

    public enum Item: Sendable, Equatable {
        case teacher(name: String, source: TeacherSource)
        case dataset(name: String, source: DatasetSource)

        public var name: String {
            switch self {
            case .teacher(let n, _), .dataset(let n, _): return n
            }
        }

        var typeName: String {
            if case .teacher = self { return "teacher" }
            return "dataset"
        }
    }

    public static let version = 1

    public init(path: String) {
        self.path = absolutePath(path)
    }

    public func encode(_ items: [Item]) -> JSON {
        let teachers = JSON.array()
        let datasets = JSON.array()
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
            }
        }
        return JSON.object([("version", JSON(Self.version)), ("teachers", teachers), ("datasets", datasets)])
    }

    public func save(_ items: [Item]) throws {
        var bytes = encode(items).serialized(sortKeys: true, pretty: true)
        bytes.append(0x0A)
        let dir = (path as NSString).deletingLastPathComponent
        let tmp = "\(path).tmp.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw fileError(.unreadable, tmp, "cannot create: \(String(cString: strerror(errno)))") }
        var ok = true
        bytes.withUnsafeBytes { buf in
            var off = 0
            while off < buf.count {
                let w = write(fd, buf.baseAddress! + off, buf.count - off)
                if w < 0 {
                    if errno == EINTR { continue }
                    ok = false
                    return
                }
                off += w
            }
        }
        let err = errno
        if ok && fsync(fd) != 0 { ok = false }
        close(fd)
        guard ok else {
            unlink(tmp)
            throw fileError(.unreadable, tmp, "cannot write: \(String(cString: strerror(err)))")
        }
        guard rename(tmp, path) == 0 else {
            let e = errno
            unlink(tmp)
            throw fileError(.unreadable, path, "cannot rename into place: \(String(cString: strerror(e)))")
        }
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }

    /// Reads the items; a missing file is an empty workspace. A file that is not a
    /// workspace is renamed to `<path>.bad` (so the next save does not destroy it)
    /// and the error is thrown. Items that do not decode are skipped with a warning.
    public func read() throws -> (items: [Item], warnings: [String]) {
        if fileSize(path) == nil { return ([], []) }
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
            rename(path, path + ".bad")
            throw error
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
                    .teacher(name: name, source: TeacherSource(path: p, format: format, options: try TeacherOptions(json: t["options"]))))
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
                        source: DatasetSource(path: p, kind: kind, format: format, options: try DatasetOptions(json: d["options"]))))
            } catch {
                warnings.append("\(path): skipped a dataset entry: \(error)")
            }
        }
        return (items, warnings)
    }
}
