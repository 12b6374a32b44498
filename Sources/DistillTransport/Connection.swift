import DistillJSON

#if canImport(Glibc)
    import Glibc
#endif

/// One client's byte stream: a reading loop that yields message bodies and a
/// thread-safe writer that frames replies the way the client framed its messages.
///
/// - Important: `send` may be called from any thread and never blocks on the
///   client: messages are queued and written, whole and in order, by a writer
///   thread of the connection's own. A client that does not read its replies
///   therefore holds up only itself: while more than `highWater` bytes wait, its
///   input is not read (so it cannot ask for more), and droppable messages (logs)
///   are dropped.
public final class Connection: @unchecked Sendable {
    public let input: Int32
    public let output: Int32
    private var framer: MessageFramer
    private let writeLock = NSLockish()
    private var closed = false

    /// Bytes queued for the writer above which reading pauses.
    public static let highWater = 8 << 20
    private let outbox = Condition()
    private var queued: [[UInt8]] = []
    private var queuedBytes = 0
    private var writerRunning = false
    private var finished = false

    public init(input: Int32, output: Int32, maxMessageBytes: Int, framing: Framing? = nil) {
        self.input = input
        self.output = output
        self.framer = MessageFramer(maxMessageBytes: maxMessageBytes, framing: framing)
    }

    /// The framing the client chose (nil until its first byte arrives).
    public var framing: Framing? { writeLock.withLock { framer.framing } }

    /// Reads until end of input, calling `handle` for each framed event in order.
    /// Returns when the peer closes its end, a read fails, or `handle` returns false.
    public func run(_ handle: (FrameEvent) -> Bool) {
        let size = 1 << 16
        let chunk = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        defer { chunk.deallocate() }
        while true {
            waitForRoom()
            let n = read(input, chunk, size)
            if n < 0 {
                if errno == EINTR { continue }
                break
            }
            if n == 0 { break }
            let events = writeLock.withLock { framer.feed(UnsafeRawBufferPointer(start: chunk, count: n)) }
            for e in events where !handle(e) { return }
        }
        let tail = writeLock.withLock { framer.finish() }
        for e in tail where !handle(e) { return }
    }

    /// Queues one message for writing. Returns false once the peer has gone away
    /// (or the session finished), and for a droppable message while the client
    /// is not reading.
    @discardableResult
    public func send(_ message: JSON, droppable: Bool = false) -> Bool {
        let body = message.serialized()
        let framing = writeLock.withLock { framer.framing ?? .contentLength }
        let bytes = MessageFramer.frame(body, as: framing)
        outbox.lock()
        defer { outbox.unlock() }
        guard !closed && !finished else { return false }
        if droppable && queuedBytes > Self.highWater { return false }
        queued.append(bytes)
        queuedBytes += bytes.count
        if !writerRunning {
            writerRunning = true
            startWriter()
        }
        outbox.broadcast()
        return true
    }

    /// True once the peer can read nothing more: a write to it failed, or its end
    /// reports a hang-up (a socket peer that closed both directions, a pipe whose
    /// reader is gone). A peer that only shut down its sending side has not gone.
    public var peerHasGone: Bool {
        if isClosed { return true }
        var p = pollfd(fd: output, events: Int16(POLLOUT), revents: 0)
        return poll(&p, 1, 0) == 1 && (p.revents & Int16(POLLHUP | POLLERR)) != 0
    }

    public var isClosed: Bool {
        outbox.lock()
        defer { outbox.unlock() }
        return closed
    }

    /// Writes what is queued, then stops the writer: later sends are dropped.
    /// Returns once nothing will touch `output` any more (or the peer went away).
    public func finishWriting() {
        outbox.lock()
        finished = true
        outbox.broadcast()
        while writerRunning { outbox.wait() }
        outbox.unlock()
    }

    /// Pauses reading while the client leaves too many replies unread.
    private func waitForRoom() {
        outbox.lock()
        while queuedBytes > Self.highWater && !closed { outbox.wait() }
        outbox.unlock()
    }

    private func startWriter() {
        let box = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let started = pthread_create(
            &thread, nil,
            { raw in
                let connection = Unmanaged<Connection>.fromOpaque(raw!).takeRetainedValue()
                connection.writerLoop()
                return nil
            }, box)
        if started == 0 {
            pthread_detach(thread)
        } else {
            // No thread: write on the caller's, as a last resort.
            Unmanaged<Connection>.fromOpaque(box).release()
            writerRunning = false
            let batch = queued
            queued = []
            queuedBytes = 0
            for bytes in batch where !closed {
                if !bytes.withUnsafeBytes({ Self.writeAll(output, $0) }) { closed = true }
            }
        }
    }

    private func writerLoop() {
        outbox.lock()
        while true {
            while queued.isEmpty && !finished && !closed { outbox.wait() }
            if queued.isEmpty || closed { break }
            let batch = queued
            queued = []
            outbox.unlock()
            var ok = true
            for bytes in batch {
                ok = bytes.withUnsafeBytes { Self.writeAll(output, $0) }
                if !ok { break }
            }
            outbox.lock()
            queuedBytes -= batch.reduce(0) { $0 + $1.count }
            if !ok {
                closed = true
                queued = []
                queuedBytes = 0
            }
            outbox.broadcast()
        }
        writerRunning = false
        outbox.broadcast()
        outbox.unlock()
    }

    /// Writes every byte, retrying on EINTR and short writes.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }
}

/// A mutex with a condition variable over pthread.
final class Condition: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()
    init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
    }
    deinit {
        pthread_cond_destroy(&cond)
        pthread_mutex_destroy(&mutex)
    }
    func lock() { pthread_mutex_lock(&mutex) }
    func unlock() { pthread_mutex_unlock(&mutex) }
    func wait() { pthread_cond_wait(&cond, &mutex) }
    func broadcast() { pthread_cond_broadcast(&cond) }
}

/// A small mutex over pthread, so the transport needs no Foundation.
public final class NSLockish: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    public init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    @inline(__always)
    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}
