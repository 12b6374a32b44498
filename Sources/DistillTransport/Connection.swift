import DistillJSON

#if canImport(Glibc)
    import Glibc
#endif

/// One client's byte stream: a reading loop that yields message bodies and a
/// thread-safe writer that frames replies the way the client framed its messages.
///
/// - Important: `send` may be called from any thread; writes of whole messages
///   never interleave.
public final class Connection: @unchecked Sendable {
    public let input: Int32
    public let output: Int32
    private var framer: MessageFramer
    private let writeLock = NSLockish()
    private var closed = false
    /// Messages written, for statistics.
    public private(set) var sentCount = 0

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

    /// Frames and writes one message. Returns false once the peer has gone away.
    @discardableResult
    public func send(_ message: JSON) -> Bool {
        let body = message.serialized()
        return writeLock.withLock {
            guard !closed else { return false }
            let bytes = MessageFramer.frame(body, as: framer.framing ?? .contentLength)
            let ok = bytes.withUnsafeBytes { Self.writeAll(output, $0) }
            if !ok { closed = true } else { sentCount += 1 }
            return ok
        }
    }

    public var isClosed: Bool { writeLock.withLock { closed } }

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
