import ArgumentParser
import DistillTransport
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `distilld connect`: forwards stdin/stdout to the shared daemon, starting one
/// when none answers (as `gopls -remote=auto` does). An editor configured with
/// this command shares loaded teachers with every script on the same socket.
struct Connect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Forward stdin/stdout to the shared daemon, starting it if needed.")

    @Option(help: "The daemon's socket (default: the per-user socket).")
    var socket: String?

    @Option(help: "Idle timeout, in seconds, for a daemon this command starts.")
    var idleTimeout: Double = 600

    @Flag(help: "Fail instead of starting a daemon when none answers.")
    var noStart = false

    @Option(name: .customLong("log-level"), help: "Log level for a daemon this command starts.")
    var logLevel: String?

    @Flag(help: "Forward an MCP client (an agent): the daemon serves this connection as an MCP session.")
    var mcp = false

    func validate() throws {
        try checkSeconds(idleTimeout, flag: "--idle-timeout", zero: "never")
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let path = socket ?? UnixSocket.defaultPath()
        let fd = try connectOrStart(path)
        if mcp {
            // Said before the client's first byte, in the lines framing MCP's stdio transport uses.
            let line = Array(#"{"jsonrpc":"2.0","method":"distilld/mcp"}"#.utf8) + [0x0A]
            guard line.withUnsafeBytes({ Connection.writeAll(fd, $0) }) else {
                throw Refusal(description: "the daemon on \(path) hung up")
            }
        }
        forward(fd)
    }

    /// Dials only a socket that cannot belong to someone else (`UnixSocket.checkSafeToDial`):
    /// otherwise another user who created the directory first would receive our requests.
    func dial(_ path: String) throws -> Int32? {
        do {
            try UnixSocket.checkSafeToDial(path)
        } catch let error as SystemError {
            throw Refusal(description: "refusing to connect to \(path): \(error)")
        }
        return try? UnixSocket.connect(path: path)
    }

    func connectOrStart(_ path: String) throws -> Int32 {
        if let fd = try dial(path) { return fd }
        guard !noStart else { throw Refusal(description: "no daemon answers on \(path) (and --no-start was given)") }
        let directory = (path as NSString).deletingLastPathComponent
        if socket == nil { try UnixSocket.securePrivateDirectory(directory) }
        // One starter at a time: a second `connect` waits here, then finds the daemon.
        let lockFD = open(directory + "/distilld.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard lockFD >= 0 else { throw SystemError("open", detail: directory + "/distilld.lock") }
        defer { close(lockFD) }
        flock(lockFD, LOCK_EX)
        defer { flock(lockFD, LOCK_UN) }
        if let fd = try dial(path) { return fd }
        try startDaemon(path: path, logFile: directory + "/distilld.log")
        for _ in 0..<200 {
            if let fd = try dial(path) { return fd }
            usleep(25_000)
        }
        throw Refusal(description: "started a daemon but it did not answer on \(path) within 5 s; see \(directory)/distilld.log")
    }

    /// Starts `distilld serve --shared` (the per-user socket, with its default
    /// workspace, so what was loaded survives an idle exit) or `--listen PATH` (no
    /// workspace) in its own session, detached from our stdio.
    func startDaemon(path: String, logFile: String) throws {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var args = ["distilld", "serve"] + (socket == nil ? ["--shared"] : ["--listen", path])
        args += ["--idle-timeout", String(idleTimeout)]
        if let logLevel { args += ["--log-level", logLevel] }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, logFile, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, 0x80)  // POSIX_SPAWN_SETSID (glibc): the daemon outlives our terminal
        var cArgs = args.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid = pid_t()
        let rc = posix_spawn(&pid, executable, &actions, &attributes, &cArgs, environ)
        guard rc == 0 else { throw SystemError("posix_spawn", code: rc, detail: executable) }
    }

    /// Copies stdin to the socket and the socket to stdout until the daemon hangs up.
    func forward(_ fd: Int32) -> Never {
        let upstream = Thread {
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 16)
            while true {
                let n = read(0, buffer, 1 << 16)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                if !Connection.writeAll(fd, UnsafeRawBufferPointer(start: buffer, count: n)) { break }
            }
            // Our client is done sending; the daemon still answers what it has read.
            shutdown(fd, Int32(SHUT_WR))
        }
        upstream.start()
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 16)
        while true {
            let n = read(fd, buffer, 1 << 16)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            if !Connection.writeAll(1, UnsafeRawBufferPointer(start: buffer, count: n)) { break }
        }
        Foundation.exit(0)
    }
}

/// A reason not to go on that is not a usage error (exit code 1, no usage text).
struct Refusal: Error, CustomStringConvertible {
    let description: String
}
