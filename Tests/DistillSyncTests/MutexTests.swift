import Dispatch
import DistillSync
import Testing

/// The project's one lock: exclusion, waiting until the state is ready, and giving
/// up at a deadline.
struct MutexTests {
    @Test func incrementsFromManyThreadsAreNeverLost() {
        let count = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<10_000 { count.withLock { $0 += 1 } }
        }
        #expect(count.withLock { $0 } == 80_000)
    }

    @Test func aWaiterWakesWhenAnotherThreadMakesTheStateReady() {
        let queue = Mutex<[Int]>([])
        let taken = Mutex<[Int]>([])
        let consumer = DispatchQueue(label: "consumer")
        let done = DispatchGroup()
        consumer.async(group: done) {
            for _ in 0..<100 {
                // A deadline far away only so that a lost wake-up fails the test instead of hanging it.
                let next = queue.withLock(waitingUntil: { !$0.isEmpty }, deadline: .now.advanced(by: .seconds(30))) {
                    $0.isEmpty ? -1 : $0.removeFirst()
                }
                taken.withLock { $0.append(next) }
            }
        }
        for i in 0..<100 {
            queue.withLock {
                $0.append(i)
                queue.signal()
            }
        }
        done.wait()
        #expect(taken.withLock { $0 } == Array(0..<100))
    }

    @Test func aDeadlineEndsTheWaitAndTheBodyStillRuns() {
        let flag = Mutex(false)
        let start = ContinuousClock.now
        let ranWith = flag.withLock(waitingUntil: { $0 }, deadline: start.advanced(by: .milliseconds(50))) { $0 }
        #expect(ranWith == false)
        #expect(ContinuousClock.now - start >= .milliseconds(50))
        // A deadline already past does not wait at all, and a ready state does not wait for the deadline.
        #expect(flag.withLock(waitingUntil: { $0 }, deadline: start, { $0 }) == false)
        flag.withLock { $0 = true }
        #expect(flag.withLock(waitingUntil: { $0 }, deadline: .now.advanced(by: .seconds(3600)), { $0 }) == true)
    }

    @Test func broadcastWakesEveryWaiter() {
        let open = Mutex(false)
        let woken = Mutex(0)
        let done = DispatchGroup()
        for i in 0..<4 {
            DispatchQueue(label: "waiter \(i)").async(group: done) {
                let ready = open.withLock(waitingUntil: { $0 }, deadline: .now.advanced(by: .seconds(30))) { $0 }
                if ready { woken.withLock { $0 += 1 } }
            }
        }
        open.withLock {
            $0 = true
            open.broadcast()
        }
        done.wait()
        #expect(woken.withLock { $0 } == 4)
    }

    @Test func aThrowingBodyReleasesTheLock() {
        struct Refused: Error {}
        let lock = Mutex()
        #expect(throws: Refused.self) { try lock.withLock { throw Refused() } }
        // Held still, this would deadlock (pthread's default mutex is not recursive).
        #expect(lock.withLock { 42 } == 42)
    }
}
