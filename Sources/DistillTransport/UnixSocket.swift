#if canImport(Glibc)
    import Glibc
#endif

/// A failed system call, with its name and errno text.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let code: Int32
    public let detail: String
    public init(_ call: String, code: Int32 = errno, detail: String = "") {
        self.call = call
        self.code = code
        self.detail = detail
    }
    public var description: String {
        let text = String(cString: strerror(code))
        return detail.isEmpty ? "\(call): \(text)" : "\(call) \(detail): \(text)"
    }
}

/// Unix-domain stream sockets: where the shared daemon listens and how `connect` reaches it.
public enum UnixSocket {
    /// The per-user directory for the default socket: `$XDG_RUNTIME_DIR/distilld`,
    /// else `/tmp/distilld-$UID`. Created with mode 0700; a directory owned by
    /// someone else, or open to others, is refused.
    public static func defaultDirectory() -> String {
        if let runtime = getenv("XDG_RUNTIME_DIR"), runtime.pointee != 0 {
            return String(cString: runtime) + "/distilld"
        }
        return "/tmp/distilld-\(getuid())"
    }

    public static func defaultPath() -> String { defaultDirectory() + "/distilld.sock" }

    /// Makes sure `directory` exists, belongs to this user and is private.
    public static func securePrivateDirectory(_ directory: String) throws {
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw SystemError("mkdir", detail: directory)
        }
        // lstat: the per-user directory itself must not be a link someone else planted.
        try checkDirectory(directory, followingLinks: false, refusing: 0o077, "accessible to")
    }

    private static func address(_ path: String) throws -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard bytes.count < capacity else {
            throw SystemError("socket path", code: ENAMETOOLONG, detail: path)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return addr
    }

    /// Refuses a directory that another user owns or that others can write to: whoever
    /// can write there can replace the socket, and whoever owns it can change that.
    /// (A directory open for reading is fine: the socket itself is mode 0600.)
    public static func checkDirectoryIsSafe(_ directory: String) throws {
        try checkDirectory(directory, followingLinks: true, refusing: 0o022, "writable by")
    }

    /// Refuses anything but a directory of this user's none of whose `refused`
    /// mode bits are set; `others` words the refusal ("writable by" other users).
    private static func checkDirectory(_ directory: String, followingLinks: Bool, refusing refused: mode_t, _ others: String)
        throws
    {
        var st = stat()
        guard (followingLinks ? stat(directory, &st) : lstat(directory, &st)) == 0 else {
            throw SystemError(followingLinks ? "stat" : "lstat", detail: directory)
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            throw SystemError("socket directory", code: ENOTDIR, detail: directory)
        }
        guard st.st_uid == getuid() else {
            throw SystemError("socket directory", code: EPERM, detail: "\(directory) is owned by uid \(st.st_uid), not \(getuid())")
        }
        if st.st_mode & refused != 0 {
            throw SystemError(
                "socket directory", code: EPERM,
                detail: "\(directory) is \(others) other users (mode \(String(st.st_mode & 0o777, radix: 8)))")
        }
    }

    /// The directory a socket path lives in ("." for a bare name).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let dir = String(path[..<slash])
        return dir.isEmpty ? "/" : dir
    }

    /// Checks, before dialling, that `path` can only be a daemon of this user: its
    /// directory passes `checkDirectoryIsSafe` (and, for the per-user default socket,
    /// `securePrivateDirectory`'s rules), and the socket, if present, is a socket owned
    /// by this user. Throws a `SystemError` that says why not.
    public static func checkSafeToDial(_ path: String) throws {
        let dir = directory(of: path)
        var st = stat()
        if path == defaultPath() {
            guard lstat(dir, &st) == 0 else { return }  // nothing there yet: nobody to hijack us
            guard (st.st_mode & S_IFMT) == S_IFDIR, st.st_uid == getuid(), st.st_mode & 0o077 == 0 else {
                try securePrivateDirectory(dir)  // throws the precise reason
                return
            }
        } else {
            guard stat(dir, &st) == 0 else { return }
            try checkDirectoryIsSafe(dir)
        }
        guard lstat(path, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw SystemError("socket", code: ENOTSOCK, detail: "\(path) is not a socket")
        }
        guard st.st_uid == getuid() else {
            throw SystemError("socket", code: EPERM, detail: "\(path) is owned by uid \(st.st_uid), not \(getuid())")
        }
    }

    /// Binds and listens. The directory must pass `checkDirectoryIsSafe`. Only a
    /// stale socket (nobody answering) is replaced; a live one is an error (another
    /// daemon owns it), and so is anything that is not a socket (a file, a symlink).
    /// The backlog is large (the kernel caps it at `net.core.somaxconn`): a burst of
    /// clients, such as a notebook's workers starting together, must queue rather than
    /// get EAGAIN, which is what a full backlog gives a non-blocking or timed connect.
    public static func listen(path: String, backlog: Int32 = 4096) throws -> Int32 {
        try checkDirectoryIsSafe(directory(of: path))
        var st = stat()
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else {
                throw SystemError("listen", code: EEXIST, detail: "\(path) exists and is not a socket; not replacing it")
            }
            if (try? connect(path: path)).map({ close($0) }) != nil {
                throw SystemError("listen", code: EADDRINUSE, detail: "\(path): a daemon is already serving there")
            }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket") }
        var addr = try address(path)
        // Created 0600 from the start (no window in which others may connect).
        let oldMask = umask(0o177)
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(oldMask)
        guard ok == 0 else {
            let e = SystemError("bind", detail: path)
            close(fd)
            throw e
        }
        chmod(path, 0o600)
        guard Glibc.listen(fd, backlog) == 0 else {
            let e = SystemError("listen", detail: path)
            close(fd)
            throw e
        }
        return fd
    }

    public static func connect(path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket") }
        var addr = try address(path)
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard ok == 0 else {
            let e = SystemError("connect", detail: path)
            close(fd)
            throw e
        }
        return fd
    }

    /// Waits for the next client; nil when the listening socket was closed.
    ///
    /// Running out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) does
    /// not end the loop: `onPressure` is told (once per episode), and accepting resumes after a short
    /// pause (the pending client waits in the backlog meanwhile), so the loop
    /// neither spins nor dies.
    public static func accept(_ listener: Int32, onPressure: ((SystemError) -> Void)? = nil) -> Int32? {
        var pause: UInt32 = 10_000
        while true {
            let fd = Glibc.accept(listener, nil, nil)
            if fd >= 0 {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                return fd
            }
            switch errno {
            case EINTR, ECONNABORTED, EPROTO:
                continue
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                if pause == 10_000 { onPressure?(SystemError("accept")) }
                usleep(pause)
                pause = min(pause * 2, 500_000)
            default:
                return nil
            }
        }
    }
}
