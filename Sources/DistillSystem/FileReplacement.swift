#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A file written whole or not at all: the bytes go to a temporary file beside `path`, which
/// `commit` flushes to disk and renames over `path`. A reader sees the old file or the whole
/// new one, never a part; a replacement dropped without `commit` removes its temporary file.
///
/// - Important: one writer on one thread; the type is not shared.
public final class FileReplacement {
    /// What failed, and the `errno` it failed with.
    public struct Failure: Error, Sendable {
        public enum Step: Sendable {
            /// The temporary file could not be created.
            case create
            /// Writing or flushing the temporary file.
            case write
            /// Renaming the temporary file over the path.
            case rename
        }

        public let step: Step
        public let code: Int32

        /// The system's text for `code`.
        public var reason: String { errnoText(code) }
    }

    public let path: String
    public let temporary: String
    private var fd: Int32
    /// Whether the temporary file is gone: renamed over `path`, or removed after a failure.
    private var finished = false

    /// Creates `temporary` (a name in `path`'s directory, so that the rename stays on one file
    /// system), or throws `Failure` at `.create`.
    public init(path: String, temporary: String) throws {
        self.path = path
        self.temporary = temporary
        fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Failure(step: .create, code: errno) }
    }

    /// Appends `bytes`, or throws `Failure` at `.write`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        let code = writeAll(to: fd, bytes)
        guard code == 0 else { throw Failure(step: .write, code: code) }
    }

    /// Writes `bytes` at `offset` of the temporary file (regions written out of order, a file laid out
    /// up front), or throws `Failure` at `.write`.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(step: .write, code: errno)
            }
            done += n
        }
    }

    /// Flushes the temporary file and renames it over `path`; with `syncingDirectory`, flushes
    /// the directory too, so that the rename itself survives a crash. Throws `Failure` at
    /// `.write` or `.rename`, having removed the temporary file.
    public func commit(syncingDirectory: Bool = false) throws {
        let synced = fsync(fd) == 0
        let syncError = errno
        close(fd)
        fd = -1
        guard synced else { throw abandon(Failure(step: .write, code: syncError)) }
        guard rename(temporary, path) == 0 else { throw abandon(Failure(step: .rename, code: errno)) }
        finished = true
        guard syncingDirectory else { return }
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }

    /// Removes the temporary file, giving back `failure` to throw.
    private func abandon(_ failure: Failure) -> Failure {
        unlink(temporary)
        finished = true
        return failure
    }

    deinit {
        if fd >= 0 { close(fd) }
        if !finished { unlink(temporary) }
    }
}
