import DistillTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A whole file mapped read-only (`PROT_READ`, `MAP_PRIVATE`).
///
/// `TensorStorage`s built over the map hold it as their owner, so the mapping
/// stays alive while any tensor uses it and is unmapped when the last one goes.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    /// nil for an empty file (nothing is mapped).
    public let base: UnsafeRawPointer?
    public let size: Int

    /// Opens and maps `path`. Missing → `.notFound`; a directory, no permission
    /// or a failing `mmap` → `.unreadable`.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            if e == ENOENT || e == ENOTDIR {
                throw fileError(.notFound, path, "no such file")
            }
            throw fileError(.unreadable, path, "cannot open: \(String(cString: strerror(e)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw fileError(.unreadable, path, "cannot stat: \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw fileError(.unreadable, path, "not a regular file")
        }
        size = Int(st.st_size)
        if size == 0 {
            base = nil
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw fileError(.unreadable, path, "cannot map \(size) bytes: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(p)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
    }

    /// The mapped bytes. Valid only while this object is alive: prefer `withBytes`.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

    /// Calls `body` with the bytes, keeping the mapping alive meanwhile.
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(bytes) }
    }

    /// Storage for `count` bytes at `offset`, pointing into the map (no copy).
    public func storage(offset: Int, count: Int) -> TensorStorage {
        precondition(offset >= 0 && count >= 0 && offset + count <= size)
        let p = base.map { $0 + offset } ?? UnsafeRawPointer(bitPattern: 64)!
        return TensorStorage(base: p, byteCount: count, owner: self)
    }

    /// Drops this range's pages from the process's resident set (they stay in the
    /// page cache and are faulted back in on the next read). Used after a scan so
    /// that validating a 4 GB file does not leave 4 GB resident.
    func release(offset: Int, count: Int) {
        guard let base, count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: base) + offset
        let alignedStart = (start + page - 1) / page * page
        let end = (start + count) / page * page
        guard end > alignedStart else { return }
        _ = madvise(UnsafeMutableRawPointer(bitPattern: alignedStart), end - alignedStart, MADV_DONTNEED)
    }

    /// Asks the kernel to start reading a range ahead of use.
    func adviseWillNeed(offset: Int, count: Int) {
        guard let base, count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: base) + offset) / page * page
        let end = Int(bitPattern: base) + offset + count
        _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_WILLNEED)
    }

    /// Hint the kernel for a sequential read of a range.
    func adviseSequential(offset: Int, count: Int) {
        guard let base, count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: base) + offset) / page * page
        let end = Int(bitPattern: base) + offset + count
        _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_SEQUENTIAL)
    }
}

/// Size of a file without reading it; nil when it cannot be stat'ed.
func fileSize(_ path: String) -> Int? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return Int(st.st_size)
}

func isDirectory(_ path: String) -> Bool {
    var st = stat()
    guard stat(path, &st) == 0 else { return false }
    return (st.st_mode & S_IFMT) == S_IFDIR
}

/// Absolute form of a path (relative to the current directory), without resolving links.
func absolutePath(_ path: String) -> String {
    if path.hasPrefix("/") { return path }
    var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    guard getcwd(&buf, buf.count) != nil else { return path }
    let cwd = String(cString: buf)
    return cwd == "/" ? "/" + path : cwd + "/" + path
}
