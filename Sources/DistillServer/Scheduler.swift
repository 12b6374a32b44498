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

/// Orders one session's work by the names each item reads or updates (`Ordering`): an item
/// starts once no earlier unfinished item conflicts with it, so reads run together, an update
/// of `a` waits for earlier uses of `a` and holds back later ones, and items that share no name
/// do not wait for each other. Nothing here blocks a thread while an item waits its turn.
final class RequestScheduler: @unchecked Sendable {  // all state is guarded by `lock`
    /// Names one submitted item, for `finished(_:)`.
    typealias Ticket = Int

    private struct Item {
        let ordering: Ordering
        let start: (Ticket) -> Void
        var started = false
        var finished = false
    }

    /// How far past the first item that must wait the scheduler looks for items that may start:
    /// bounds the work of one look at a long queue.
    static let lookahead = 1024

    private let lock = Mutex()
    /// Unfinished items in submission order, from `head`; `serial(head)` is `base`.
    private var items: [Item] = []
    private var head = 0
    private var base = 0
    private var unfinished = 0
    private var pumping = false
    private var again = false

    /// Queues work; `start` runs when its turn comes and must lead to exactly one
    /// `finished(ticket)` call with the ticket it is given, when the work has finished (right
    /// away for inline work).
    func submit(_ ordering: Ordering, start: @escaping (Ticket) -> Void) {
        lock.withLock {
            items.append(Item(ordering: ordering, start: start))
            unfinished += 1
        }
        pump()
    }

    func finished(_ serial: Ticket) {
        lock.withLock {
            items[serial - base].finished = true
            unfinished -= 1
            while head < items.count && items[head].finished { head += 1 }
            if head > 1024 && head * 2 > items.count {
                items.removeFirst(head)
                base += head
                head = 0
            }
            if unfinished == 0 { lock.broadcast() }
        }
        pump()
    }

    /// Blocks until every submitted item has finished, or until `deadline`; true
    /// when everything has finished.
    func waitUntilIdle(before deadline: Date) -> Bool {
        let until = ContinuousClock.now.advanced(by: .seconds(deadline.timeIntervalSinceNow))
        return lock.withLock(waitingUntil: { _ in unfinished == 0 }, deadline: until) { _ in unfinished == 0 }
    }

    /// Starts whatever may start. One thread pumps at a time; a change that arrives meanwhile
    /// makes the pumping thread look again.
    private func pump() {
        let mayPump = lock.withLock { () -> Bool in
            if pumping {
                again = true
                return false
            }
            pumping = true
            return true
        }
        guard mayPump else { return }
        while true {
            let ready = lock.withLock { () -> [(Ticket, (Ticket) -> Void)] in
                again = false
                return takeRunnable()
            }
            for (serial, start) in ready { start(serial) }
            let stop = lock.withLock { () -> Bool in
                guard ready.isEmpty && !again else { return false }
                pumping = false
                return true
            }
            if stop { return }
        }
    }

    /// Marks as started, and returns, the items no earlier unfinished item conflicts with.
    /// Call with `lock` held.
    private func takeRunnable() -> [(Ticket, (Ticket) -> Void)] {
        var ready: [(Ticket, (Ticket) -> Void)] = []
        // What the earlier unfinished items use, summed up.
        var earlierUpdateAll = false
        var earlierReadAll = false
        // Whether an earlier item updates some names: a read of everything waits for it even
        // when its set of names is empty, as `Ordering.conflicts` says.
        var earlierUpdateNamed = false
        var earlierUpdated = Set<String>()
        var earlierRead = Set<String>()
        var waiting = 0
        var index = head
        while index < items.count && !earlierUpdateAll && waiting < Self.lookahead {
            defer { index += 1 }
            let item = items[index]
            if item.finished { continue }
            let ordering = item.ordering
            if !item.started {
                let blocked: Bool
                switch (ordering.access, ordering.names) {
                case (.update, nil):
                    blocked = index > head
                case (.read, nil):
                    blocked = earlierUpdateNamed
                case (.update, let names?):
                    blocked = earlierReadAll || !names.isDisjoint(with: earlierUpdated) || !names.isDisjoint(with: earlierRead)
                case (.read, let names?):
                    blocked = !names.isDisjoint(with: earlierUpdated)
                }
                if blocked {
                    waiting += 1
                } else {
                    items[index].started = true
                    ready.append((base + index, item.start))
                }
            }
            switch (ordering.access, ordering.names) {
            case (.update, nil): earlierUpdateAll = true
            case (.read, nil): earlierReadAll = true
            case (.update, let names?):
                earlierUpdated.formUnion(names)
                earlierUpdateNamed = true
            case (.read, let names?): earlierRead.formUnion(names)
            }
        }
        return ready
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
