import ArgumentParser
import DistillServer
import DistillTransport
import Dispatch
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

    func serverOptions() throws -> ServerOptions {
        var options = ServerOptions()
        options.maxMessageBytes = maxMessageBytes
        let name = logLevel ?? ProcessInfo.processInfo.environment["DISTILLD_LOG"] ?? "warning"
        guard let level = LogLevel(name: name) else {
            throw ValidationError("unknown log level '\(name)'")
        }
        options.logLevel = level
        return options
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
        signal(SIGPIPE, SIG_IGN)
        let server = DistillServer(options: try common.serverOptions())
        server.onStop = { Foundation.exit(0) }
        if let path = listen ?? (shared ? UnixSocket.defaultPath() : nil) {
            try SocketServer(server: server, path: path, idleTimeout: idleTimeout).run()
        }
        let code = serveStdio(server)
        Foundation.exit(code)
    }

    /// stdout carries protocol only: the real stdout is kept for messages and fd 1
    /// is pointed at stderr, so a stray print cannot corrupt the stream.
    func serveStdio(_ server: DistillServer) -> Int32 {
        let protocolOut = dup(1)
        dup2(2, 1)
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
