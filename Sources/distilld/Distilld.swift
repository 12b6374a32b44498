import ArgumentParser
import Dispatch
import DistillServer
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

struct CommonOptions: ParsableArguments {
    @Option(name: .customLong("log-level"), help: "error, warning, info, log or debug (default: $DISTILLD_LOG or warning).")
    var logLevel: String?

    @Option(help: "Largest message accepted, in bytes.")
    var maxMessageBytes: Int = 256 << 20

    @Option(help: "Memory budget for loaded teachers and datasets, in bytes (suffixes K, M, G accepted).")
    var memoryBudget: String?

    @Option(help: "Keep the names of loaded files in this file and reload them at start.")
    var workspace: String?

    @Option(help: "Seconds a request with a workDoneToken runs before $/progress begins.")
    var progressAfter: Double = 0.5

    func serverOptions() throws -> ServerOptions {
        var options = ServerOptions()
        options.maxMessageBytes = maxMessageBytes
        let name = logLevel ?? ProcessInfo.processInfo.environment["DISTILLD_LOG"] ?? "warning"
        guard let level = LogLevel(name: name) else {
            throw ValidationError("unknown log level '\(name)'")
        }
        options.logLevel = level
        if let budget = memoryBudget {
            guard let bytes = Self.parseBytes(budget) else { throw ValidationError("--memory-budget: cannot read '\(budget)' as a size") }
            options.memoryBudget = bytes
        }
        options.workspacePath = workspace
        guard progressAfter >= 0, progressAfter.isFinite else { throw ValidationError("--progress-after must be ≥ 0") }
        options.progressThreshold = progressAfter
        return options
    }

    /// "512M", "4G", "1000": bytes.
    static func parseBytes(_ text: String) -> Int? {
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var digits = text.uppercased()
        if digits.hasSuffix("B") { digits.removeLast() }
        var scale = 1
        if let last = digits.last, let unit = units[last] {
            scale = unit
            digits.removeLast()
        }
        guard let value = Double(digits), value >= 0, value.isFinite else { return nil }
        return Int(value * Double(scale))
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

    func run() throws {
        CPUCheck.requireBuildFeatures()
        signal(SIGPIPE, SIG_IGN)
        let server = DistillServer(options: try common.serverOptions())
        server.onStop = { Foundation.exit(0) }
        if let path = listen ?? (shared ? UnixSocket.defaultPath() : nil) {
            server.restoreWorkspace()
            try SocketServer(server: server, path: path, idleTimeout: idleTimeout).run()
        }
        // stdout carries protocol only: the real stdout is kept for messages and fd 1
        // is pointed at stderr before anything else runs, so a stray print cannot
        // corrupt the stream.
        let protocolOut = dup(1)
        dup2(2, 1)
        server.restoreWorkspace()
        Foundation.exit(serveStdio(server, output: protocolOut))
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
