#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// State shared between threads, reachable only while its lock is held; a thread
/// may also wait under the lock until the state is what it needs. This is the one
/// lock of the project: every class that threads share keeps its mutable state in
/// a `Mutex` (or, in code not yet in Swift 6 mode, guards its fields with a
/// `Mutex<Void>`).
///
/// ```swift
/// let jobs = Mutex<[Job]>([])
/// jobs.withLock { $0.append(job); jobs.signal() }
/// let next = jobs.withLock(waitingUntil: { !$0.isEmpty }) { $0.removeFirst() }
/// ```
///
/// - Important: pthread, not the standard library's `Synchronization.Mutex`. On
///   Linux a contended `Synchronization.Mutex` waits with FUTEX_LOCK_PI inside the
///   Swift runtime, where ThreadSanitizer cannot see the hand-over, so
///   `make sanitize-thread` reports every value passed through one as a race;
///   `pthread_mutex_lock` and `pthread_cond_wait` are intercepted and understood.
///   A class, so that the pthread objects, which must not move once used, live at
///   one address for the lock's life.
///
/// `@unchecked Sendable` because the compiler cannot see the pthread mutex: the
/// state is touched only inside `withLock`, with the mutex held, and values enter
/// and leave as `sending`, so a value that is not `Sendable` cannot stay reachable
/// from two threads through it.
public final class Mutex<State>: @unchecked Sendable {
    private var state: State
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init(_ initial: consuming sending State) {
        state = initial
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        #if !canImport(Darwin)
            // Deadlines are measured on the monotonic clock: a change of the
            // wall clock must not stretch or cut a wait.
            pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        #endif
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` on the state with the lock held.
    public func withLock<R>(_ body: (inout sending State) throws -> sending R) rethrows -> sending R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }

    /// Waits until `isReady` holds for the state, then runs `body` with the lock
    /// held since that check, so nothing changes in between. While it waits the
    /// lock is free; `isReady` is asked again (under the lock) after every
    /// `signal` or `broadcast`, and may be asked after none.
    ///
    /// - Parameter deadline: when given, the wait ends there even if the state is
    ///   not ready, and `body` runs all the same: it sees the state as it is and
    ///   decides (ask `isReady` again to tell the two apart).
    ///
    /// The waiting is done here rather than by a `wait()` called inside `body`:
    /// `body` holds the state `inout`, which the compiler may assume no other
    /// thread changes until `body` returns.
    public func withLock<R>(
        waitingUntil isReady: (borrowing State) -> Bool, deadline: ContinuousClock.Instant? = nil,
        _ body: (inout sending State) throws -> sending R
    ) rethrows -> sending R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !isReady(state) {
            if let deadline {
                if !wait(before: deadline) { break }
            } else {
                pthread_cond_wait(condition, mutex)
            }
        }
        return try body(&state)
    }

    /// Wakes one thread waiting in `withLock(waitingUntil:)`, if any. Call it
    /// after changing what a waiter looks for, usually inside `withLock`.
    public func signal() { pthread_cond_signal(condition) }

    /// Wakes every thread waiting in `withLock(waitingUntil:)`.
    public func broadcast() { pthread_cond_broadcast(condition) }

    /// One wait on the condition (lock held), no later than `deadline`; false once
    /// the deadline has passed.
    private func wait(before deadline: ContinuousClock.Instant) -> Bool {
        let left = ContinuousClock.now.duration(to: deadline)
        guard left > .zero else { return false }
        let (seconds, attoseconds) = left.components
        let nanoseconds = Int(attoseconds / 1_000_000_000)
        #if canImport(Darwin)
            var relative = timespec(tv_sec: Int(seconds), tv_nsec: nanoseconds)
            pthread_cond_timedwait_relative_np(condition, mutex, &relative)
        #else
            var until = timespec()
            clock_gettime(CLOCK_MONOTONIC, &until)
            until.tv_sec += Int(seconds)
            until.tv_nsec += nanoseconds
            if until.tv_nsec >= 1_000_000_000 {
                until.tv_sec += 1
                until.tv_nsec -= 1_000_000_000
            }
            pthread_cond_timedwait(condition, mutex, &until)
        #endif
        return true
    }
}

extension Mutex where State == Void {
    /// A lock that guards no state of its own: for classes whose fields it guards
    /// by convention (code not yet checked by Swift 6's concurrency rules).
    public convenience init() { self.init(()) }

    /// Runs `body` with the lock held.
    public func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
