import CStoreSupport
import DistillTensor
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A whole file mapped read-only (`PROT_READ`, `MAP_PRIVATE`).
///
/// `TensorStorage`s built over the map hold it as their owner, so the mapping
/// stays alive while any tensor uses it and is unmapped when the last one goes.
///
/// - Important: a mapped file can change underneath: rewritten in place (same
///   size or not), truncated, or replaced under its path. The map keeps its file
///   descriptor and the file's identity at opening (device, inode, size, mtime,
///   ctime); `checkUnchanged()` compares them with the file now. A page read past
///   a truncated end would raise SIGBUS: the mapping is registered with the guard
///   in CStoreSupport, which puts a zero page there instead and marks the map
///   `truncated`; `FileGuard.run` then refuses the result.
/// Unchecked only for `base`: every property is a `let`, and the mapping is read-only.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    /// nil for an empty file (nothing is mapped).
    public let base: UnsafeRawPointer?
    public let size: Int
    private let fd: Int32
    private let identity: FileIdentity
    /// The guard's slot for this mapping (-1: none).
    private let slot: Int32

    /// Opens and maps `path` (through `openForReading`: regular files only).
    /// Missing → `.notFound`; no permission, not a regular file or a failing
    /// `mmap` → `.unreadable`.
    public init(path: String) throws {
        self.path = path
        let (fd, st) = try openForReading(path)
        self.fd = fd
        identity = FileIdentity(st)
        size = Int(st.st_size)
        if size == 0 {
            base = nil
            slot = -1
            FileGuard.note(self)
            return
        }
        _ = distill_store_install_sigbus_handler()
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            let e = errno
            close(fd)
            throw fileError(.unreadable, path, "cannot map \(size) bytes: \(String(cString: strerror(e)))")
        }
        base = UnsafeRawPointer(p)
        slot = distill_store_register_mapping(p, size)
        FileGuard.note(self)
    }

    /// Whether a read past the end of the file (it was truncated after mapping)
    /// was answered with zeros.
    public var truncated: Bool { distill_store_mapping_truncated(slot) != 0 }

    /// Throws `.fileChanged` naming the file when it is no longer what was mapped:
    /// truncated during a read, its size, mtime or ctime changed, or the path now
    /// names another file (replaced, or removed).
    public func checkUnchanged() throws {
        if truncated {
            throw fileError(
                .fileChanged, path,
                "the file was truncated while it was being read; the result was discarded. Reload it (replace: true)")
        }
        var now = stat()
        if fstat(fd, &now) == 0, let change = identity.difference(FileIdentity(now)) {
            throw fileError(.fileChanged, path, "the file changed since it was loaded (\(change)). Reload it (replace: true)")
        }
        var named = stat()
        guard stat(path, &named) == 0 else {
            throw fileError(.fileChanged, path, "the file was removed or renamed since it was loaded. Reload it (replace: true)")
        }
        if let change = identity.difference(FileIdentity(named)) {
            throw fileError(
                .fileChanged, path, "the path names a different file than at load (\(change)). Reload it (replace: true)")
        }
    }

    deinit {
        distill_store_unregister_mapping(slot)
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
        close(fd)
    }

    /// The mapped bytes. Valid only while this object is alive: prefer `withBytes`.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

    /// Calls `body` with the bytes, keeping the mapping alive meanwhile.
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(bytes) }
    }

    /// Storage for `count` bytes at `offset`, pointing into the map (no copy).
    public func storage(offset: Int, count: Int) -> TensorStorage {
        precondition(offset >= 0 && count >= 0 && count <= size - offset)
        let p = base.map { $0 + offset } ?? UnsafeRawPointer(bitPattern: 64)!
        return TensorStorage(base: p, byteCount: count, owner: self)
    }

    /// Drops this range's pages from the process's resident set (they stay in the
    /// page cache and are faulted back in on the next read). Used after a scan so
    /// that validating a 4 GB file does not leave 4 GB resident. Only whole pages
    /// inside the range are dropped.
    func release(offset: Int, count: Int) {
        advise(MADV_DONTNEED, offset: offset, count: count, wholePagesOnly: true)
    }

    /// Asks the kernel to start reading a range ahead of use.
    func adviseWillNeed(offset: Int, count: Int) {
        advise(MADV_WILLNEED, offset: offset, count: count, wholePagesOnly: false)
    }

    /// Hint the kernel for a sequential read of a range.
    func adviseSequential(offset: Int, count: Int) {
        advise(MADV_SEQUENTIAL, offset: offset, count: count, wholePagesOnly: false)
    }

    /// `madvise` over a byte range of the map. madvise takes page-aligned ranges: the
    /// range is widened to the pages it touches, or, with `wholePagesOnly`, narrowed to the
    /// pages it covers entirely (so no byte outside it is affected).
    private func advise(_ advice: Int32, offset: Int, count: Int, wholePagesOnly: Bool) {
        guard let base, count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: base) + offset
        let end = start + count
        let (from, to) =
            wholePagesOnly
            ? ((start + page - 1) / page * page, end / page * page) : (start / page * page, end)
        guard to > from else { return }
        _ = madvise(UnsafeMutableRawPointer(bitPattern: from), to - from, advice)
    }
}

/// What identifies a file's contents without reading them.
struct FileIdentity: Equatable {
    let device: UInt64
    let inode: UInt64
    let size: Int
    let mtime: (Int, Int)
    let ctime: (Int, Int)

    init(_ st: stat) {
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        size = Int(st.st_size)
        mtime = (Int(st.st_mtim.tv_sec), Int(st.st_mtim.tv_nsec))
        ctime = (Int(st.st_ctim.tv_sec), Int(st.st_ctim.tv_nsec))
    }

    static func == (a: FileIdentity, b: FileIdentity) -> Bool { a.difference(b) == nil }

    /// What differs, in words, or nil.
    func difference(_ now: FileIdentity) -> String? {
        if device != now.device || inode != now.inode { return "it is another file (inode \(inode) → \(now.inode))" }
        if size != now.size { return "size \(size) → \(now.size) bytes" }
        if mtime != now.mtime { return "modified" }
        if ctime != now.ctime { return "status changed" }
        return nil
    }
}

/// Opens `path` for reading: the one way the store opens a file.
///
/// Refuses a path holding a NUL character (the C call would read only the part
/// before it) and anything that is not a regular file, naming what it is (a
/// directory, a FIFO, a socket, a device). The open itself is non-blocking, so a
/// FIFO with no writer does not hang the request; the flag is cleared once the
/// file is known to be regular. Returns the descriptor (the caller closes it)
/// and its `stat`.
func openForReading(_ path: String) throws -> (Int32, stat) {
    guard !path.utf8.contains(0) else {
        throw StoreError(.invalidPath, "a path holds a NUL character; a path cannot contain NUL", file: path)
    }
    FileGuard.noteOpen(path)
    let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    if fd < 0 {
        let e = errno
        if e == ENOENT || e == ENOTDIR {
            throw fileError(.notFound, path, "no such file")
        }
        throw fileError(.unreadable, path, "cannot open: \(String(cString: strerror(e)))")
    }
    var st = stat()
    guard fstat(fd, &st) == 0 else {
        let e = errno
        close(fd)
        throw fileError(.unreadable, path, "cannot stat: \(String(cString: strerror(e)))")
    }
    let type = st.st_mode & S_IFMT
    guard type == S_IFREG else {
        close(fd)
        let what: String
        switch type {
        case S_IFDIR: what = "a directory"
        case S_IFIFO: what = "a FIFO (named pipe)"
        case S_IFSOCK: what = "a socket"
        case S_IFCHR: what = "a character device"
        case S_IFBLK: what = "a block device"
        default: what = "a special file"
        }
        throw fileError(.unreadable, path, "it is \(what), not a regular file; only regular files are read")
    }
    let flags = fcntl(fd, F_GETFL)
    if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
    return (fd, st)
}

/// Size of a file without reading it; nil when it cannot be stat'ed.
func fileSize(_ path: String) -> Int? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return Int(st.st_size)
}

/// Absolute form of a path (relative to the current directory), without resolving links.
public func absolutePath(_ path: String) -> String {
    if path.hasPrefix("/") { return path }
    var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    guard getcwd(&buf, buf.count) != nil else { return path }
    let cwd = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return cwd == "/" ? "/" + path : cwd + "/" + path
}

/// A file format read from a mapped file (`SafetensorsFile`, `NpyArray`, a GGUF file).
public protocol MappedFileFormat {
    /// Reads the format from `map`, which the result keeps.
    init(map: MappedFile) throws
}

extension MappedFileFormat {
    /// Maps `path` (see `MappedFile.init(path:)`) and reads it.
    public init(path: String) throws { try self.init(map: MappedFile(path: path)) }
}
