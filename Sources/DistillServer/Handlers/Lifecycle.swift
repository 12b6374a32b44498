import Dispatch
import DistillAnalysis
import DistillJSON
import DistillMath
import DistillProtocol
import DistillText

#if canImport(Glibc)
    import Glibc
#endif

/// initialize, shutdown and the daemon's own housekeeping requests.
enum Lifecycle {
    @Sendable static func initialize(_ request: InitializeRequest, _ context: RequestContext) throws -> InitializeRequest.Response {
        if let name = request.logMessages {
            context.server.log.subscribe(context.session.connection, level: LogLevel(name: name))
        }
        return InitializeRequest.Response(
            serverName: DistillServer.name, serverVersion: DistillServer.version, capabilities: Capabilities.json())
    }

    /// Stops the whole daemon (every session), unlike `shutdown`, which ends one
    /// session's lifecycle. The reply goes out first; the process exits shortly after.
    @Sendable static func stop(_ request: StopRequest, _ context: RequestContext) throws -> StopRequest.Response {
        guard let onStop = context.server.onStop else {
            throw ResponseError(code: .invalidRequest, message: "Invalid request: this daemon cannot be stopped from a client")
        }
        context.server.log(.info, "distilld/stop: stopping the daemon")
        // A thread of its own: the shared pool may be busy, and stopping must not wait for it.
        startThread("distilld.stop") {
            usleep(200_000)
            onStop()
        }
        return StopRequest.Response()
    }

    @Sendable static func status(_ request: StatusRequest, _ context: RequestContext) throws -> StatusRequest.Response {
        let server = context.server
        let live = JSON.liveCounts
        let entries = server.registry.list()
        return StatusRequest.Response(
            serverName: DistillServer.name, serverVersion: DistillServer.version, pid: Int(getpid()),
            uptimeSeconds: server.uptime, sessions: server.activeSessions, requestsServed: server.requestsServed,
            residentBytes: residentBytes(), budgetBytes: server.options.memoryBudget,
            entriesResidentBytes: server.registry.usage.resident, entriesMappedBytes: server.registry.usage.mapped,
            teachers: entries.filter { $0.type == .teacher }.count, datasets: entries.filter { $0.type == .dataset }.count,
            liveJSONValues: live.wrappers, liveJSONAllocations: live.allocations)
    }

    /// Resident set size from /proc/self/statm (pages × page size).
    static func residentBytes() -> Int {
        let fd = open("/proc/self/statm", O_RDONLY)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 128)
        let n = read(fd, &buffer, buffer.count)
        guard n > 0 else { return 0 }
        let fields = String(decoding: buffer[..<n], as: UTF8.self).split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// What `initialize` announces: every method, notification and loss this build supports.
enum Capabilities {
    static func json() -> JSON {
        [
            "methods": JSON.array(MethodTable.requests.map(\.method)),
            "notifications": JSON.array(MethodTable.notifications.map(\.method)),
            "framings": ["content-length", "lines"],
            "binaryArrays": ["dtypes": ["float32", "float16", "bfloat16", "float64", "int32", "int64"]],
            "losses": JSON.array(LossName.allCases.map(\.rawValue)),
            "reductions": JSON.array(Reduction.allCases.map(\.rawValue)),
            "tailPolicies": JSON.array(TopKTailPolicy.allCases.map(\.rawValue)),
            "conventions": JSON.array(Convention.allCases.map(\.rawValue)),
            "diagnosticCodes": JSON.array((Finding.allCodes + Diagnosis.codes).map(\.code) + ["unreadable-line"]),
            // LSP: full-text sync, so editors send didOpen/didChange/didSave for dataset files.
            "textDocumentSync": ["openClose": true, "change": 1, "save": ["includeText": true]],
            "workDoneProgress": true,
            "cancellation": true,
            "errorCodes": JSON.object(ErrorCode.all.map { ($0.name, JSON($0.code.rawValue)) }),
        ]
    }
}
