import Dispatch
import DistillServer
import DistillSync
import DistillTransport
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The shared daemon: one `DistillServer`, a session per connection, each on its own thread.
final class SocketServer: @unchecked Sendable {
    let server: DistillServer
    let path: String
    let idleTimeout: Double
    private let lock = Mutex()
    private var clients = 0
    private var lastActivity = Date()

    init(server: DistillServer, path: String, idleTimeout: Double) {
        self.server = server
        self.path = path
        self.idleTimeout = idleTimeout
    }

    /// Listens, runs `beforeAccepting` (the workspace restore: clients that connect
    /// meanwhile wait in the backlog, so `connect` never sees a missing socket), then
    /// serves until stopped.
    func run(beforeAccepting: () -> Void = {}) throws -> Never {
        let directory = (path as NSString).deletingLastPathComponent
        if path == UnixSocket.defaultPath() {
            try UnixSocket.securePrivateDirectory(directory)
        }
        let listener = try UnixSocket.listen(path: path)
        server.onStop = { [self] in stop(0) }
        server.log(.info, "listening on \(path)")
        installSignalHandlers()
        beforeAccepting()
        lock.withLock { lastActivity = Date() }
        if idleTimeout > 0 { watchIdle() }
        let onPressure: (SystemError) -> Void = { [server] error in
            server.log(.warning, "\(error): new clients wait until a connection closes")
        }
        while let fd = UnixSocket.accept(listener, onPressure: onPressure) {
            lock.withLock {
                clients += 1
                lastActivity = Date()
            }
            let started = Self.spawn(stackSize: 8 << 20) { [self] in
                let connection = Connection(input: fd, output: fd, maxMessageBytes: server.options.maxMessageBytes)
                let ending = server.serve(connection)
                server.log(.info, "client on fd \(fd) ended: \(ending)")
                close(fd)
                lock.withLock {
                    clients -= 1
                    lastActivity = Date()
                }
            }
            if let failure = started {
                // Out of threads or memory: this client is turned away (closed at once,
                // not left waiting for an answer that never comes); the others go on.
                server.log(.warning, "cannot serve a new client: \(failure); closing its connection")
                close(fd)
                lock.withLock { clients -= 1 }
            }
        }
        stop(0)
    }

    /// Runs `body` on a new detached thread; returns the error when the thread could
    /// not be created (Foundation's `Thread` gives no way to find out).
    static func spawn(stackSize: Int, _ body: @escaping () -> Void) -> SystemError? {
        final class Box {
            let body: () -> Void
            init(_ body: @escaping () -> Void) { self.body = body }
        }
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, stackSize)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, &attributes,
            { raw in
                let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
                box.body()
                return nil
            }, box)
        guard rc == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            return SystemError("pthread_create", code: rc)
        }
        return nil
    }

    private func stop(_ code: Int32) -> Never {
        unlink(path)
        Foundation.exit(code)
    }

    private var signalSources: [DispatchSourceSignal] = []

    private func installSignalHandlers() {
        for sig in [SIGTERM, SIGINT, SIGHUP] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [self] in
                server.log(.info, "signal \(sig): removing \(path) and exiting")
                stop(0)
            }
            source.resume()
            signalSources.append(source)
        }
    }

    private func watchIdle() {
        let timer = Thread { [self] in
            while true {
                Thread.sleep(forTimeInterval: min(1, idleTimeout / 4))
                let idle = lock.withLock { clients == 0 ? Date().timeIntervalSince(lastActivity) : 0 }
                if idle >= idleTimeout {
                    server.log(.info, "idle for \(Int(idle)) s with no client: exiting")
                    stop(0)
                }
            }
        }
        timer.start()
    }
}
