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
        var st = stat()
        guard lstat(directory, &st) == 0 else { throw SystemError("lstat", detail: directory) }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            throw SystemError("socket directory", code: ENOTDIR, detail: directory)
        }
        guard st.st_uid == getuid() else {
            throw SystemError("socket directory", code: EPERM, detail: "\(directory) is owned by uid \(st.st_uid), not \(getuid())")
        }
        if st.st_mode & 0o077 != 0 {
            throw SystemError(
                "socket directory", code: EPERM,
                detail: "\(directory) is accessible to other users (mode \(String(st.st_mode & 0o777, radix: 8)))")
        }
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

    /// Binds and listens. A stale socket file (nobody answering) is replaced;
    /// a live one is an error (another daemon owns it).
    public static func listen(path: String, backlog: Int32 = 64) throws -> Int32 {
        if (try? connect(path: path)).map({ close($0) }) != nil {
            throw SystemError("listen", code: EADDRINUSE, detail: "\(path): a daemon is already serving there")
        }
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket") }
        var addr = try address(path)
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
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
    public static func accept(_ listener: Int32) -> Int32? {
        while true {
            let fd = Glibc.accept(listener, nil, nil)
            if fd >= 0 {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                return fd
            }
            if errno == EINTR || errno == ECONNABORTED { continue }
            return nil
        }
    }
}
