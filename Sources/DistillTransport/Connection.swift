import DistillJSON
import DistillSync
import DistillSystem

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
public final class Connection: Sendable {
    public let input: Int32
    public let output: Int32
    /// Held by the reading loop while it frames input, and by `send` to learn
    /// the framing the client chose.
    private let framer: Mutex<MessageFramer>

    /// Bytes queued for the writer above which reading pauses.
    public static let highWater = 8 << 20
    private let outbox = Mutex(Outbox())

    /// What waits to be written, and how the writer thread stands.
    private struct Outbox {
        var queued: [[UInt8]] = []
        var queuedBytes = 0
        var writerRunning = false
        var finished = false
        /// A write failed: the peer can read nothing more.
        var closed = false
    }

    public init(input: Int32, output: Int32, maxMessageBytes: Int, framing: Framing? = nil) {
        self.input = input
        self.output = output
        self.framer = Mutex(MessageFramer(maxMessageBytes: maxMessageBytes, framing: framing))
    }

    /// The framing the client chose (nil until its first byte arrives).
    public var framing: Framing? { framer.withLock { $0.framing } }

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
            let events = framer.withLock { $0.feed(UnsafeRawBufferPointer(start: chunk, count: n)) }
            for e in events where !handle(e) { return }
        }
        let tail = framer.withLock { $0.finish() }
        for e in tail where !handle(e) { return }
    }

    /// Queues one message for writing. Returns false once the peer has gone away
    /// (or the session finished), and for a droppable message while the client
    /// is not reading.
    @discardableResult
    public func send(_ message: JSON, droppable: Bool = false) -> Bool {
        let body = message.serialized()
        let framing = framer.withLock { $0.framing ?? .contentLength }
        let bytes = MessageFramer.frame(body, as: framing)
        return outbox.withLock { box in
            guard !box.closed && !box.finished else { return false }
            if droppable && box.queuedBytes > Self.highWater { return false }
            box.queued.append(bytes)
            box.queuedBytes += bytes.count
            if !box.writerRunning {
                box.writerRunning = true
                startWriter(&box)
            }
            outbox.broadcast()
            return true
        }
    }

    /// True once the peer can read nothing more: a write to it failed, or its end
    /// reports a hang-up (a socket peer that closed both directions, a pipe whose
    /// reader is gone). A peer that only shut down its sending side has not gone.
    public var peerHasGone: Bool {
        if isClosed { return true }
        var p = pollfd(fd: output, events: Int16(POLLOUT), revents: 0)
        return poll(&p, 1, 0) == 1 && (p.revents & Int16(POLLHUP | POLLERR)) != 0
    }

    public var isClosed: Bool { outbox.withLock { $0.closed } }

    /// Writes what is queued, then stops the writer: later sends are dropped.
    /// Returns once nothing will touch `output` any more (or the peer went away).
    public func finishWriting() {
        outbox.withLock { box in
            box.finished = true
            outbox.broadcast()
        }
        outbox.withLock(waitingUntil: { !$0.writerRunning }) { _ in }
    }

    /// Pauses reading while the client leaves too many replies unread.
    private func waitForRoom() {
        outbox.withLock(waitingUntil: { $0.queuedBytes <= Self.highWater || $0.closed }) { _ in }
    }

    /// Called with the outbox locked.
    private func startWriter(_ box: inout Outbox) {
        let retained = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let started = pthread_create(
            &thread, nil,
            { raw in
                let connection = Unmanaged<Connection>.fromOpaque(raw!).takeRetainedValue()
                connection.writerLoop()
                return nil
            }, retained)
        if started == 0 {
            pthread_detach(thread)
        } else {
            // No thread: write on the caller's, as a last resort.
            Unmanaged<Connection>.fromOpaque(retained).release()
            box.writerRunning = false
            let batch = box.queued
            box.queued = []
            box.queuedBytes = 0
            for bytes in batch where !box.closed {
                if !bytes.withUnsafeBytes({ Self.writeAll(output, $0) }) { box.closed = true }
            }
        }
    }

    private func writerLoop() {
        while true {
            let next = outbox.withLock(waitingUntil: { !$0.queued.isEmpty || $0.finished || $0.closed }) { box -> [[UInt8]]? in
                if box.queued.isEmpty || box.closed {
                    box.writerRunning = false
                    outbox.broadcast()
                    return nil
                }
                defer { box.queued = [] }
                return box.queued
            }
            guard let batch = next else { return }
            var ok = true
            for bytes in batch {
                ok = bytes.withUnsafeBytes { Self.writeAll(output, $0) }
                if !ok { break }
            }
            outbox.withLock { box in
                box.queuedBytes -= batch.reduce(0) { $0 + $1.count }
                if !ok {
                    box.closed = true
                    box.queued = []
                    box.queuedBytes = 0
                }
                outbox.broadcast()
            }
        }
    }

    /// Writes every byte, retrying on EINTR and short writes.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        DistillSystem.writeAll(to: fd, bytes) == 0
    }
}
