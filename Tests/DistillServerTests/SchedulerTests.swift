import DistillJSON
import DistillProtocol
import DistillTestSupport
import Foundation
import Testing

@testable import DistillServer

/// `RequestScheduler` against its contract: an item starts once no earlier unfinished item
/// conflicts with it (`Ordering.conflicts`), so conflicting items never run together, an item
/// never overtakes an earlier conflicting one, items with no conflict start at once, and
/// every item runs.
struct SchedulerTests {
    /// A random ordering over three names: a read or an update of a random subset (the empty
    /// set included) or of everything.
    static func randomOrdering(_ rng: inout Rng) -> Ordering {
        let access: Ordering.Access = rng.uniform() < 0.6 ? .read : .update
        if rng.uniform() < 0.12 { return Ordering(access, names: nil) }
        return Ordering(access, names: Set(["a", "b", "c"].filter { _ in rng.uniform() < 0.4 }))
    }

    /// What the scheduler has done with the items of one run, and every broken rule seen.
    ///
    /// - Important: every member is guarded by `condition`; `start` and `finish` may be called
    ///   from any thread.
    final class Model: @unchecked Sendable {
        let condition = NSCondition()
        private(set) var orderings: [Ordering] = []
        private(set) var starts: [Int] = []
        private(set) var finished: [Bool] = []
        /// The serials not finished yet: what an item may have to wait for.
        private(set) var unfinished = Set<Int>()
        /// The most items unfinished at once.
        private(set) var mostUnfinished = 0
        /// Started items whose work the test has not finished yet, with the call that finishes them.
        private(set) var held: [(serial: Int, done: @Sendable () -> Void)] = []
        private(set) var violations: [String] = []
        /// Set when the finishing threads are to go.
        private(set) var stopping = false

        /// Registers the next item in submission order and returns its serial.
        func add(_ ordering: Ordering) -> Int {
            condition.lock()
            defer { condition.unlock() }
            orderings.append(ordering)
            starts.append(0)
            finished.append(false)
            unfinished.insert(orderings.count - 1)
            mostUnfinished = max(mostUnfinished, unfinished.count)
            return orderings.count - 1
        }

        /// The scheduler started `serial`: no earlier conflicting item may be unfinished, and
        /// no running item may conflict with it.
        func start(_ serial: Int) {
            condition.lock()
            defer { condition.unlock() }
            starts[serial] += 1
            if starts[serial] > 1 { violations.append("item \(serial) started \(starts[serial]) times") }
            let mine = orderings[serial]
            for other in unfinished where other != serial && mine.conflicts(with: orderings[other]) {
                if starts[other] > 0 {
                    violations.append("item \(serial) (\(mine)) ran together with item \(other) (\(orderings[other]))")
                }
                if other < serial {
                    violations.append("item \(serial) (\(mine)) started before earlier item \(other) (\(orderings[other])) finished")
                }
            }
        }

        func hold(_ serial: Int, _ done: @escaping @Sendable () -> Void) {
            condition.lock()
            held.append((serial, done))
            condition.broadcast()
            condition.unlock()
        }

        /// Marks `serial` finished before the scheduler hears of it, so that the scheduler can
        /// never be seen starting something on the strength of a finish the model missed.
        func finish(_ serial: Int) {
            condition.lock()
            finished[serial] = true
            unfinished.remove(serial)
            condition.unlock()
        }

        /// Takes a random held item, marks it finished and returns its finishing call; nil when none is held.
        func takeHeld(_ rng: inout Rng) -> (@Sendable () -> Void)? {
            condition.lock()
            defer { condition.unlock() }
            guard !held.isEmpty else { return nil }
            let item = held.remove(at: Int.random(in: 0..<held.count, using: &rng))
            finished[item.serial] = true
            unfinished.remove(item.serial)
            return item.done
        }

        /// The items the contract says have started by now: those with no unfinished earlier
        /// conflicting item.
        var shouldHaveStarted: [Bool] {
            condition.lock()
            defer { condition.unlock() }
            let waiting = unfinished.sorted()
            var expected = [Bool](repeating: true, count: orderings.count)
            for (k, i) in waiting.enumerated() {
                expected[i] = waiting[..<k].allSatisfy { !orderings[$0].conflicts(with: orderings[i]) }
            }
            return expected
        }

        /// Waits a little for an item to be held; false once the finishing threads are to go.
        func waitForWork() -> Bool {
            condition.lock()
            defer { condition.unlock() }
            if held.isEmpty && !stopping { _ = condition.wait(until: Date(timeIntervalSinceNow: 0.01)) }
            return !stopping
        }

        func stop() {
            condition.lock()
            stopping = true
            condition.broadcast()
            condition.unlock()
        }

        var started: [Bool] {
            condition.lock()
            defer { condition.unlock() }
            return starts.map { $0 > 0 }
        }
    }

    /// Submits an item whose work ends at once (`inline`) or when the test finishes it.
    static func submit(_ ordering: Ordering, inline: Bool, to scheduler: RequestScheduler, model: Model) {
        let serial = model.add(ordering)
        scheduler.submit(ordering) { ticket in
            model.start(serial)
            let done: @Sendable () -> Void = { scheduler.finished(ticket) }
            if inline {
                model.finish(serial)
                done()
            } else {
                model.hold(serial, done)
            }
        }
    }

    /// One thread submits and finishes items in random order, so after every step the set
    /// of started items must be exactly what the contract allows: nothing early, and
    /// nothing that may start left waiting.
    @Test(arguments: 0..<12)
    func startsExactlyWhatNoEarlierConflictHoldsBack(seed: UInt64) {
        var rng = Rng(seed)
        let scheduler = RequestScheduler()
        let model = Model()
        for step in 0..<500 {
            if rng.uniform() < 0.55 {
                Self.submit(Self.randomOrdering(&rng), inline: rng.uniform() < 0.15, to: scheduler, model: model)
            } else if let done = model.takeHeld(&rng) {
                done()
            }
            let started = model.started, expected = model.shouldHaveStarted
            if started != expected {
                let wrong = started.indices.filter { started[$0] != expected[$0] }
                Issue.record(
                    "seed \(seed) step \(step): items \(wrong) are \(wrong.map { started[$0] ? "started" : "waiting" }) against the contract"
                )
                break
            }
        }
        while let done = model.takeHeld(&rng) { done() }
        #expect(scheduler.waitUntilIdle(before: Date(timeIntervalSinceNow: 5)))
        #expect(model.started.allSatisfy { $0 }, "seed \(seed): every item ran")
        #expect(model.violations.isEmpty, "seed \(seed): \(model.violations.prefix(3))")
    }

    /// Many items, finished in random order by several threads while more are submitted:
    /// no conflicting items ever run together, none overtakes an earlier conflicting one,
    /// and every item runs. Thousands wait at once, more than the scheduler looks ahead
    /// (`RequestScheduler.lookahead`), which is why this test does not ask that free items
    /// start at once: past the lookahead they start when earlier items finish.
    @Test(arguments: 0..<4)
    func concurrentFinishesKeepTheOrderAndEveryItemRuns(seed: UInt64) {
        var rng = Rng(1000 + seed)
        let scheduler = RequestScheduler()
        let model = Model()
        let count = 3000
        let finishers = 4
        let stopped = DispatchGroup()
        for f in 0..<finishers {
            stopped.enter()
            let thread = Thread { [model] in
                var rng = Rng(seed * 100 + UInt64(f))
                while true {
                    if let done = model.takeHeld(&rng) {
                        if rng.uniform() < 0.3 { usleep(UInt32.random(in: 0...200, using: &rng)) }
                        done()
                        continue
                    }
                    if !model.waitForWork() { break }
                }
                stopped.leave()
            }
            thread.start()
        }
        for i in 0..<count {
            Self.submit(Self.randomOrdering(&rng), inline: rng.uniform() < 0.2, to: scheduler, model: model)
            if i % 200 == 199 { usleep(2000) }
        }
        #expect(scheduler.waitUntilIdle(before: Date(timeIntervalSinceNow: 120)), "seed \(seed): every item finished")
        model.stop()
        stopped.wait()
        #expect(model.started.count == count && model.started.allSatisfy { $0 })
        print("seed \(seed): at most \(model.mostUnfinished) items unfinished at once")
        #expect(model.violations.isEmpty, "seed \(seed): \(model.violations.count) violations, first \(model.violations.prefix(3))")
    }
}

/// Per-name ordering seen from a client: a load of one name does not wait for an analysis
/// of another, and a load of the name the analysis reads does.
struct NameOrderingTests {
    /// A teacher "a" and an explanation of 1000 students that all read it, at 256
    /// temperatures: about five seconds a student in a debug build, so it is certainly still
    /// running when the loads arrive; it ends when it is cancelled, and its cancellation is
    /// what lets the load of "a" run. The order of the replies decides; no time is measured
    /// except a generous wait for a reply that must come.
    @Test func aLoadOfAnotherNameDoesNotWaitForAnAnalysisWhileALoadOfTheSameNameDoes() throws {
        try Self.check(patience: 120)
    }

    static func check(patience: Double) throws {
        let client = TestClient()
        var rng = Rng(17)
        let (n, t, v) = (4, 4, 1024)
        let logits = (0..<n).map { _ in (0..<t).map { _ in JSON.array((0..<v).map { _ in rng.normal() * 3 }) } }
        let loaded = client.request(
            "teacher/load", ["name": "a", "data": ["logits": JSON.array(logits.map { JSON.array($0) })]], id: 0)
        #expect(loaded["result"]?["name"]?.stringValue == "a", "\(loaded.serializedString())")
        let students = JSON.object((0..<1000).map { ("s\($0)", JSON("a")) })
        client.send([
            "jsonrpc": "2.0", "id": 1, "method": "distill/explain",
            "params": [
                "teacher": "a", "students": students, "charts": false,
                "temperatures": JSON.array((1...256).map { Double($0) / 32 }),
            ],
        ])
        client.send(["jsonrpc": "2.0", "id": 2, "method": "teacher/load", "params": ["name": "b", "path": "builtin:demo"]])
        client.send([
            "jsonrpc": "2.0", "id": 3, "method": "teacher/load", "params": ["name": "a", "path": "builtin:demo", "replace": true],
        ])
        // The load of b comes back while the explanation still runs...
        let first = client.receive(timeout: patience)
        #expect(first?["id"]?.intValue == 2, "the load of b waited: \(first?.serializedString() ?? "no reply")")
        #expect(first?["result"]?["name"]?.stringValue == "b" || first?["id"]?.intValue != 2)
        // ...while the load of a waits for it: cancelled, it answers first, then the load.
        client.send(["jsonrpc": "2.0", "method": "$/cancelRequest", "params": ["id": 1]])
        var rest: [JSON] = first.map { $0["id"]?.intValue == 2 ? [] : [$0] } ?? []
        while rest.count + (first?["id"]?.intValue == 2 ? 1 : 0) < 3, let m = client.receive(timeout: 60) { rest.append(m) }
        let ids = rest.map { $0["id"]?.intValue ?? -1 }
        if first?["id"]?.intValue == 2 {
            #expect(ids == [1, 3], "replies after the cancel: \(ids)")
        }
        let cancelled = rest.first { $0["id"]?.intValue == 1 }
        #expect(cancelled?["error"]?["code"]?.intValue == -32800)
        let reloaded = rest.first { $0["id"]?.intValue == 3 }
        #expect(reloaded?["result"]?["name"]?.stringValue == "a")
        #expect(client.request("teacher/info", ["name": "a"], id: 4)["result"]?["examples"]?.intValue == 6)
    }
}
