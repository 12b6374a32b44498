import Dispatch
import DistillJSON
import DistillModels
import DistillProtocol
import DistillStore
import DistillSync
import DistillTransport
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

public struct ServerOptions: Sendable {
    public var maxMessageBytes: Int = 256 << 20
    public var logLevel: LogLevel = .warning
    /// Seconds of work before `$/progress` begins.
    public var progressThreshold: Double = 0.5
    /// Resident + mapped bytes that loaded teachers and datasets may hold (nil: no limit).
    public var memoryBudget: Int?
    /// Where the names of loaded files are kept across restarts (nil: nowhere).
    public var workspacePath: String?
    /// Requests that read files run on threads of their own, since a read may block
    /// (a FIFO, a stalled network file); at most this many may be alive per session
    /// and in all, cancelled ones included until their read returns.
    public var maxBlockingReadsPerSession = 8
    public var maxBlockingReads = 64
    /// Every session speaks MCP from its first message (`distilld --mcp`).
    public var mcp = false

    public init() {}
}

/// The state every session shares: named teachers and datasets, options, the log.
///
/// - Important: one instance serves every connection of a shared daemon; all of
///   its members are safe to use from any thread.
public final class DistillServer: Sendable {
    public static let name = "distilld"
    public static let version = "0.1.0"

    public let options: ServerOptions
    public let log: Logger
    /// Named teachers and datasets, shared by every session.
    public let registry: Registry
    let started = ProgressReporter.now()
    private let sessionCount = Atomic<Int>(0)
    private let requestCount = Atomic<Int>(0)
    /// Work queue shared by all sessions for computation; each session orders its own
    /// requests on top of it (see `RequestScheduler`). Nothing that may block on a
    /// file or a client runs here.
    let workQueue = DispatchQueue(label: "distilld.work", qos: .userInitiated, attributes: .concurrent)
    /// Bounds the threads that requests naming files may hold.
    let blockingReads: BlockingReads
    /// The charts explain drew for MCP clients, offered as resources (MCP/ChartStore.swift).
    let mcpCharts = ChartStore()

    /// What `distilld/stop` does: set by the executable (exit the process, removing the socket).
    public var onStop: (@Sendable () -> Void)? {
        get { stopHandler.withLock { $0 } }
        set { stopHandler.withLock { $0 = newValue } }
    }
    private let stopHandler = DistillSync.Mutex<(@Sendable () -> Void)?>(nil)

    public init(options: ServerOptions) {
        self.options = options
        self.log = Logger(level: options.logLevel)
        self.blockingReads = BlockingReads(perSession: options.maxBlockingReadsPerSession, total: options.maxBlockingReads)
        self.registry = Registry(
            memoryBudget: options.memoryBudget, workspace: options.workspacePath.map { Workspace(path: $0) },
            modelLoader: { source, progress, isCancelled in try LanguageModel.load(source, progress: progress, isCancelled: isCancelled) })
    }

    /// Reloads what the workspace file names; failures are logged, not fatal.
    public func restoreWorkspace() {
        guard options.workspacePath != nil else { return }
        for warning in registry.restore() { log(.warning, "workspace: \(warning)") }
        log(.info, "workspace restored: \(registry.list().count) entries")
    }

    public var uptime: Double { ProgressReporter.now() - started }
    public var activeSessions: Int { sessionCount.load(ordering: .relaxed) }
    public var requestsServed: Int { requestCount.load(ordering: .relaxed) }

    func countRequest() { requestCount.add(1, ordering: .relaxed) }

    /// Serves one client until it exits or its input ends; returns how it ended.
    public func serve(_ connection: Connection) -> Session.Ending {
        sessionCount.add(1, ordering: .relaxed)
        defer { sessionCount.subtract(1, ordering: .relaxed) }
        let session = Session(server: self, connection: connection)
        return session.run()
    }
}
