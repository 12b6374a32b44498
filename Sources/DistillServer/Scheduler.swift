import DistillJSON
import DistillProtocol
import DistillSync
import Foundation

/// Where a request's work runs once its turn has come.
enum Lane: Sendable {
    /// On the thread that finds it runnable (the reading thread, or whichever thread
    /// finished the request it waited for). Only for work that is cheap and never
    /// blocks: lifecycle requests and replies decided when the request was read.
    /// So `distilld/ping`, `distilld/status` and `distilld/stop` are answered
    /// whatever the shared pool is busy with.
    case inline
    /// On the shared work pool (`DistillServer.workQueue`): computation.
    case pool
    /// On a thread of its own: work that reads a file the request names, which may
    /// block for as long as the file does (a FIFO, a stalled network file). Such a
    /// request can be abandoned by `$/cancelRequest`; the thread goes on until the
    /// file answers, and counts against `BlockingReads` until then.
    case blocking
}

/// Orders one session's work: reads run together, an update waits for every
/// earlier item and holds back later ones. Items start in the order they were
/// submitted; nothing here blocks a thread while an item waits its turn.
final class RequestScheduler: @unchecked Sendable {
    private struct Item {
        let ordering: Ordering
        let start: () -> Void
    }

    private let lock = Mutex()
    private var pending: [Item] = []
    private var head = 0
    private var runningReads = 0
    private var runningUpdate = false
    private var pumping = false

    /// Queues work; `start` runs when its turn comes and must lead to exactly one
    /// `finished(ordering)` call (right away for inline work).
    func submit(_ ordering: Ordering, start: @escaping () -> Void) {
        lock.withLock { pending.append(Item(ordering: ordering, start: start)) }
        pump()
    }

    func finished(_ ordering: Ordering) {
        lock.withLock {
            if ordering == .update { runningUpdate = false } else { runningReads -= 1 }
            lock.broadcast()
        }
        pump()
    }

    /// Blocks until every submitted item has finished, or until `deadline`; true
    /// when everything has finished.
    func waitUntilIdle(before deadline: Date) -> Bool {
        let until = ContinuousClock.now.advanced(by: .seconds(deadline.timeIntervalSinceNow))
        return lock.withLock(waitingUntil: { _ in !isBusy }, deadline: until) { _ in !isBusy }
    }

    /// Call with `lock` held.
    private var isBusy: Bool { head < pending.count || runningReads > 0 || runningUpdate }

    /// Starts whatever may start. One thread pumps at a time; a `finished` that
    /// arrives meanwhile is seen by the pumping thread's next look at the queue.
    private func pump() {
        let mayPump = lock.withLock { () -> Bool in
            if pumping { return false }
            pumping = true
            return true
        }
        guard mayPump else { return }
        while let item = next() { item.start() }
    }

    private func next() -> Item? {
        lock.withLock { nextLocked() }
    }

    private func nextLocked() -> Item? {
        guard head < pending.count else {
            pumping = false
            pending.removeAll(keepingCapacity: true)
            head = 0
            return nil
        }
        let item = pending[head]
        switch item.ordering {
        case .update:
            guard runningReads == 0 && !runningUpdate else {
                pumping = false
                return nil
            }
            runningUpdate = true
        case .read:
            guard !runningUpdate else {
                pumping = false
                return nil
            }
            runningReads += 1
        }
        head += 1
        if head > 1024 && head * 2 > pending.count {
            pending.removeFirst(head)
            head = 0
        }
        return item
    }
}

/// How many blocking file reads may be alive, per session and in all: a read
/// abandoned by cancellation still holds its thread (and its place here) until
/// its file answers. Past either bound a request that names a file is refused
/// with `1005 LimitExceeded`, `data.reason: "tooManyBlockingReads"`.
final class BlockingReads: @unchecked Sendable {
    let perSession: Int
    let total: Int
    private let lock = Mutex()
    private var alive = 0
    private var bySession: [ObjectIdentifier: Int] = [:]

    init(perSession: Int, total: Int) {
        self.perSession = perSession
        self.total = total
    }

    /// Takes a place for `session`, or says why there is none.
    func acquire(_ session: ObjectIdentifier) -> ResponseError? {
        lock.withLock { acquireLocked(session) }
    }

    private func acquireLocked(_ session: ObjectIdentifier) -> ResponseError? {
        let mine = bySession[session, default: 0]
        if mine >= perSession {
            return Self.refusal(
                "\(mine) file reads of this session are still in progress or blocked (a cancelled read counts until its file answers)",
                limit: perSession, scope: "session")
        }
        if alive >= total {
            return Self.refusal(
                "\(alive) file reads of all sessions are still in progress or blocked (a cancelled read counts until its file answers)",
                limit: total, scope: "daemon")
        }
        alive += 1
        bySession[session] = mine + 1
        return nil
    }

    func release(_ session: ObjectIdentifier) {
        lock.withLock {
            alive -= 1
            let left = bySession[session, default: 1] - 1
            bySession[session] = left == 0 ? nil : left
        }
    }

    private static func refusal(_ what: String, limit: Int, scope: String) -> ResponseError {
        ResponseError(
            code: .limitExceeded, message: "Limit exceeded: \(what); try again when they are done",
            data: ["reason": "tooManyBlockingReads", "limit": JSON(limit), "scope": JSON(scope)])
    }
}

/// Runs `body` on a new thread of its own (not the shared pool).
func startThread(_ name: String, _ body: @escaping @Sendable () -> Void) {
    let thread = Thread(block: body)
    thread.name = name
    thread.stackSize = 8 << 20
    thread.start()
}

/// A thread that runs closures one at a time, in the order given.
final class SerialThread: @unchecked Sendable {
    private let name: String
    private let lock = Mutex()
    private var jobs: [() -> Void] = []
    private var started = false

    init(name: String) { self.name = name }

    func async(_ job: @escaping () -> Void) {
        lock.withLock {
            jobs.append(job)
            if !started {
                started = true
                startThread(name) { [self] in loop() }
            }
            lock.signal()
        }
    }

    private func loop() {
        while true {
            // An idle worker goes away; the next job starts a new one.
            let next = lock.withLock(waitingUntil: { _ in !jobs.isEmpty }, deadline: .now.advanced(by: .seconds(5))) {
                _ -> (() -> Void)? in
                if jobs.isEmpty {
                    started = false
                    return nil
                }
                return jobs.removeFirst()
            }
            guard let job = next else { return }
            job()
        }
    }
}
