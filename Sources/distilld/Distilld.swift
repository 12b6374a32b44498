import ArgumentParser
import DistillModels
import DistillServer
import DistillStore
import DistillSync
import DistillTransport
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// distilld's command line. `distilld` alone serves one client on stdin/stdout.
@main
struct Distilld: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distilld",
        abstract: "A knowledge-distillation analysis daemon speaking JSON-RPC 2.0.",
        version: DistillServer.version,
        subcommands: [Serve.self, Connect.self, SocketPath.self],
        defaultSubcommand: Serve.self)
}

/// Flags shared by the stdio and socket modes. Every number is checked when the
/// command line is parsed: a bad one is a usage error (exit code 64, argument-parser's
/// EX_USAGE), never a trap.
struct CommonOptions: ParsableArguments {
    @Option(name: .customLong("log-level"), help: "error, warning, info, log or debug (default: $DISTILLD_LOG or warning).")
    var logLevel: String?

    @Option(help: "Largest message accepted, in bytes.")
    var maxMessageBytes: Int = 256 << 20

    @Option(help: "Memory budget for loaded teachers and datasets, in bytes (suffixes K, M, G, T accepted).")
    var memoryBudget: String?

    @Option(
        help: "Keep the names of loaded files in this file and reload them at start (--shared: default <socket directory>/workspace.json).")
    var workspace: String?

    @Flag(help: "Keep no workspace, not even the shared daemon's default one.")
    var noWorkspace = false

    @Option(help: "Seconds a request with a workDoneToken runs before $/progress begins.")
    var progressAfter: Double = 0.5

    func validate() throws {
        guard maxMessageBytes > 0 else { throw ValidationError("--max-message-bytes must be at least 1 (got \(maxMessageBytes))") }
        if let budget = memoryBudget { _ = try Self.parseBytes(budget, flag: "--memory-budget") }
        guard progressAfter >= 0, progressAfter.isFinite else {
            throw ValidationError("--progress-after must be a finite number of seconds ≥ 0 (got \(progressAfter))")
        }
        if noWorkspace && workspace != nil { throw ValidationError("--workspace and --no-workspace exclude each other") }
    }

    func serverOptions() throws -> ServerOptions {
        var options = ServerOptions()
        options.maxMessageBytes = maxMessageBytes
        let name = logLevel ?? ProcessInfo.processInfo.environment["DISTILLD_LOG"] ?? "warning"
        guard let level = LogLevel(name: name) else {
            throw ValidationError("unknown log level '\(name)'")
        }
        options.logLevel = level
        if let budget = memoryBudget { options.memoryBudget = try Self.parseBytes(budget, flag: "--memory-budget") }
        options.workspacePath = workspace
        options.progressThreshold = progressAfter
        return options
    }

    /// "512M", "4G", "1.5T", "1000": bytes. Refuses what is not a size ≥ 0 or does not fit in an Int.
    static func parseBytes(_ text: String, flag: String) throws -> Int {
        let units: [Character: Double] = ["K": 0x1p10, "M": 0x1p20, "G": 0x1p30, "T": 0x1p40]
        var digits = text.uppercased()
        if digits.hasSuffix("B") { digits.removeLast() }
        var scale = 1.0
        if let last = digits.last, let unit = units[last] {
            scale = unit
            digits.removeLast()
        }
        guard let value = Double(digits), value >= 0, value.isFinite else {
            throw ValidationError("\(flag): cannot read '\(text)' as a size (bytes ≥ 0, suffixes K, M, G, T)")
        }
        // Double(Int.max) rounds up to 2^63, which no Int holds: compare strictly.
        guard value * scale < Double(Int.max) else {
            throw ValidationError("\(flag): '\(text)' is too large (at most \(Int.max) bytes)")
        }
        return Int(value * scale)
    }
}

/// Seconds given for a timeout: finite and ≥ 0.
func checkSeconds(_ value: Double, flag: String, zero: String) throws {
    guard value >= 0, value.isFinite else {
        throw ValidationError("\(flag) must be a finite number of seconds ≥ 0 (0: \(zero); got \(value))")
    }
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve one client on stdin/stdout, or many over a Unix socket with --listen.")

    @OptionGroup var common: CommonOptions

    @Option(help: "Serve many clients over this Unix-domain socket instead of stdin/stdout.")
    var listen: String?

    @Flag(help: "Listen on the per-user default socket (what `distilld connect` uses).")
    var shared = false

    @Option(help: "In socket mode, exit after this many seconds with no client (0: never).")
    var idleTimeout: Double = 0

    @Flag(help: "Serve the Model Context Protocol (MCP) from the first message: a tool server for agents.")
    var mcp = false

    func validate() throws {
        try checkSeconds(idleTimeout, flag: "--idle-timeout", zero: "never")
    }

    /// The workspace: `--workspace`, else for `--shared` the per-user default
    /// (`<socket directory>/workspace.json`), else none; `--no-workspace` wins.
    func workspacePath() -> String? {
        if common.noWorkspace { return nil }
        if let chosen = common.workspace { return chosen }
        return shared && listen == nil ? UnixSocket.defaultDirectory() + "/workspace.json" : nil
    }

    func run() throws {
        CPUCheck.requireBuildFeatures()
        signal(SIGPIPE, SIG_IGN)
        // OpenBLAS's threads, once for the process: DISTILLD_BLAS_THREADS, else one per core. Model
        // passes take turns (`BLAS.lane`), so its threads never compete with each other's.
        BLAS.configure()
        let socketPath = listen ?? (shared ? UnixSocket.defaultPath() : nil)
        if socketPath == UnixSocket.defaultPath() {
            try UnixSocket.securePrivateDirectory(UnixSocket.defaultDirectory())
        }
        var options = try common.serverOptions()
        options.workspacePath = workspacePath()
        options.mcp = mcp
        if let path = options.workspacePath {
            let workspace = Workspace(path: path)
            do {
                try workspace.checkUsable()
            } catch let error as StoreError {
                throw ValidationError("--workspace: \(error.message)")
            }
            options.workspacePath = workspace.path
        }
        let server = DistillServer(options: options)
        server.onStop = { Foundation.exit(0) }
        if let path = options.workspacePath {
            for removed in Workspace(path: path).removeStaleTemporaries() {
                server.log(.info, "workspace: removed \(removed), left by a writer that was killed")
            }
            server.registry.onWorkspaceError = { [server] reason in
                server.log(.warning, "workspace: the change was made but not saved: \(reason)")
            }
        }
        if let path = socketPath {
            try SocketServer(server: server, path: path, idleTimeout: idleTimeout).run {
                Self.restoreBeforeServing(server)
            }
        }
        // stdout carries protocol only: the real stdout is kept for messages and fd 1
        // is pointed at stderr before anything else runs, so a stray print cannot
        // corrupt the stream.
        let protocolOut = dup(1)
        dup2(2, 1)
        Self.restoreBeforeServing(server)
        Foundation.exit(serveStdio(server, output: protocolOut))
    }

    /// Reloads the workspace before the first request is read, so a client (an editor
    /// reconnecting after an idle exit) finds what was loaded. The restore runs on its
    /// own thread: should it take longer than `patience` seconds, serving begins anyway
    /// and entries appear as they finish loading.
    static func restoreBeforeServing(_ server: DistillServer, patience: Double = 30) {
        guard server.options.workspacePath != nil else { return }
        let restored = Mutex(false)
        let restorer = Thread {
            server.restoreWorkspace()
            restored.withLock {
                $0 = true
                restored.signal()
            }
        }
        restorer.stackSize = 8 << 20
        restorer.start()
        let patient = ContinuousClock.now.advanced(by: .seconds(patience))
        if !restored.withLock(waitingUntil: { $0 }, deadline: patient, { $0 }) {
            server.log(.warning, "workspace: still restoring after \(Int(patience)) s; serving meanwhile")
        }
    }

    func serveStdio(_ server: DistillServer, output protocolOut: Int32) -> Int32 {
        let connection = Connection(input: 0, output: protocolOut, maxMessageBytes: server.options.maxMessageBytes)
        switch server.serve(connection) {
        case .exit(let afterShutdown): return afterShutdown ? 0 : 1
        case .endOfInput: return 0
        }
    }
}

struct SocketPath: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "socket-path", abstract: "Print the per-user default socket path.")
    func run() { print(UnixSocket.defaultPath()) }
}
