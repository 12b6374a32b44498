import Dispatch
import DistillJSON
import DistillProtocol
import DistillSync
import DistillTransport
import Foundation

/// One client connection: its lifecycle, its requests in flight, their order.
public final class Session: Sendable {
    public enum Ending: Sendable, Equatable {
        /// `exit` arrived; `afterShutdown` says whether `shutdown` came first (exit code 0) or not (1).
        case exit(afterShutdown: Bool)
        case endOfInput
    }

    public let server: DistillServer
    public let connection: Connection
    private let state = Mutex(State())
    /// Orders this session's requests: reads run concurrently, updates are barriers.
    /// Replies decided when a request is read go through it too, so they never
    /// overtake an earlier barrier.
    let scheduler = RequestScheduler()
    let editor = EditorSync()
    /// Whether this session speaks MCP (MCP/MCPSession.swift).
    let mcp: MCPSessionState

    private struct State {
        // Lifecycle flags change in reading order, on the reading thread.
        var initializeSeen = false
        var shutdownSeen = false
        var inFlight: [RequestID: InFlight] = [:]
    }

    /// A request read and not yet answered.
    private final class InFlight: Sendable {
        let token = CancellationToken()
        /// Set while the request's work runs on a blocking lane: answers it as
        /// cancelled at once and lets the session go on without it.
        let abandon = Mutex<(@Sendable () -> Void)?>(nil)
    }

    init(server: DistillServer, connection: Connection) {
        self.server = server
        self.connection = connection
        self.mcp = MCPSessionState(forced: server.options.mcp)
    }

    var isShutDown: Bool { state.withLock { $0.shutdownSeen } }

    private func cancel(_ request: InFlight) {
        request.token.cancel()
        if let abandon = request.abandon.withLock({ $0 }) { abandon() }
    }

    // MARK: - Reading

    func run() -> Session.Ending {
        var ending = Ending.endOfInput
        connection.run { event in
            switch event {
            case .error(let framingError):
                server.log(.warning, "framing: \(framingError.message)")
                let code: ResponseError =
                    framingError.kind == .tooLarge
                    ? ResponseError(
                        code: .limitExceeded, message: "Message too large: \(framingError.message)",
                        data: ["limit": JSON(server.options.maxMessageBytes)])
                    : .parseError(framingError.message)
                replyInOrder(OutgoingMessage.error(id: nil, code)) { self.connection.send($0!) }
                return true
            case .message(let body):
                if let end = handle(body: body) {
                    ending = end
                    return false
                }
                return true
            }
        }
        // Requests (and editor notifications) already read finish and answer before
        // the session ends, so a script that pipes its requests and then `exit` gets
        // every reply and every diagnostic.
        // A peer that hung up entirely (not one that only closed its sending side)
        // reads no reply: what it left in flight is cancelled rather than computed
        // for nobody.
        var cancelledForHangUp = false
        while !scheduler.waitUntilIdle(before: Date(timeIntervalSinceNow: 0.1)) {
            guard !cancelledForHangUp, connection.peerHasGone else { continue }
            cancelledForHangUp = true
            let requests = state.withLock { Array($0.inFlight.values) }
            server.log(.info, "the client hung up: cancelling its \(requests.count) request(s) in flight")
            requests.forEach(cancel)
        }
        server.log.subscribe(connection, level: nil)
        connection.finishWriting()
        return ending
    }

    /// Handles one message body; returns an ending when the client asked to exit.
    func handle(body: [UInt8]) -> Ending? {
        if let refusal = ParseBudget.refusal(for: body, memoryBudget: server.options.memoryBudget) {
            server.log(.warning, refusal.message)
            replyInOrder(OutgoingMessage.error(id: nil, refusal)) { self.connection.send($0!) }
            return nil
        }
        let message: JSON
        do {
            message = try JSON.parse(body)
        } catch let error as JSONParseError {
            replyInOrder(OutgoingMessage.error(id: nil, .parseError(error.description))) { self.connection.send($0!) }
            return nil
        } catch {
            replyInOrder(OutgoingMessage.error(id: nil, .parseError("\(error)"))) { self.connection.send($0!) }
            return nil
        }
        if message.isArray {
            return handleBatch(message)
        }
        var ending: Ending? = nil
        dispatch(message, exit: &ending) { reply in
            if let reply { self.connection.send(reply) }
        }
        return ending
    }

    private func handleBatch(_ batch: JSON) -> Ending? {
        guard batch.count > 0 else {
            replyInOrder(OutgoingMessage.error(id: nil, .invalidRequest("an empty batch"))) { self.connection.send($0!) }
            return nil
        }
        let collector = BatchCollector(count: batch.count) { replies in
            if !replies.isEmpty { self.connection.send(JSON.array(replies)) }
        }
        var ending: Ending? = nil
        for (index, element) in (batch.arrayValue ?? []).enumerated() {
            dispatch(element, exit: &ending) { reply in collector.complete(index, reply) }
        }
        return ending
    }

    /// Validates one message and routes it; `reply` is called exactly once, with
    /// nil for notifications (which are never answered).
    private func dispatch(_ message: JSON, exit: inout Ending?, reply: @escaping @Sendable (JSON?) -> Void) {
        switch IncomingMessage.decode(message) {
        case .failure(let envelope):
            replyInOrder(OutgoingMessage.error(id: envelope.id, envelope.error), reply)
        case .success(.response(let id)):
            server.log(.debug, "ignoring a response to \(id.serializedString()): distilld sends no requests")
            reply(nil)
        case .success(.notification(let method, let params)):
            if !routeMCPNotification(method: method, params: params) { exit = handleNotification(method, params) }
            reply(nil)
        case .success(.request(let id, let method, let params)):
            if !routeMCP(id: id, method: method, params: params, reply: reply) {
                startRequest(id: id, method: method, params: params, reply: reply)
            }
        }
    }

    private func handleNotification(_ method: String, _ params: JSON?) -> Ending? {
        guard let entry = MethodTable.notificationsByName[method] else {
            server.log(.debug, "ignoring notification \(method)")
            return nil
        }
        do {
            return try entry.handle(self, try Field.params(params))
        } catch let error as ResponseError {
            server.log(.warning, "\(method) ignored: \(error.message)")
        } catch {
            server.log(.warning, "\(method) ignored: \(error)")
        }
        return nil
    }

    /// `$/cancelRequest`: cancels the request with this id if it is in flight.
    func cancel(_ id: RequestID) {
        let request = state.withLock { $0.inFlight[id] }
        server.log(.debug, request == nil ? "cancel for \(id): not in flight" : "cancelling \(id)")
        if let request { cancel(request) }
    }

    /// Sends a reply decided when its request was read, once every earlier barrier
    /// of the session has answered (as a read, so it holds nothing back).
    func replyInOrder(_ message: JSON, _ reply: @escaping @Sendable (JSON?) -> Void) {
        computeInOrder({ message }, reply)
    }

    /// Computes a reply from the loaded state once every earlier barrier of the session has
    /// answered (so a listing sees what earlier loads loaded), as a read.
    func computeInOrder(_ message: @escaping @Sendable () -> JSON?, _ reply: @escaping @Sendable (JSON?) -> Void) {
        scheduler.submit(.read) { [scheduler] ticket in
            reply(message())
            scheduler.finished(ticket)
        }
    }

    /// Starts a request of the method table. An MCP call passes the progress token it carried
    /// in `_meta`; other requests ask for progress with `params.workDoneToken`.
    func startRequest(
        id: RequestID, method: String, params: JSON?, mcpProgressToken: JSON? = nil, reply: @escaping @Sendable (JSON?) -> Void
    ) {
        guard let entry = MethodTable.lookup(method) else {
            replyInOrder(OutgoingMessage.error(id: id.json, .methodNotFound(method)), reply)
            return
        }
        if isShutDown {
            replyInOrder(
                OutgoingMessage.error(
                    id: id.json,
                    ResponseError(
                        code: .invalidRequest, message: "Invalid request: the server is shutting down; only exit is accepted",
                        data: ["reason": "shutdown"])), reply)
            return
        }
        switch entry.lifecycle {
        case .shutdown?:
            // Decided in reading order: whatever is read after `shutdown` is refused.
            state.withLock { $0.shutdownSeen = true }
        case .initialize?:
            let again = state.withLock { state -> Bool in
                defer { state.initializeSeen = true }
                return state.initializeSeen
            }
            if again {
                replyInOrder(OutgoingMessage.error(id: id.json, .invalidRequest("\(method) was already received")), reply)
                return
            }
        case nil:
            break
        }
        let request = InFlight()
        let duplicate = state.withLock { state -> Bool in
            if state.inFlight[id] != nil { return true }
            state.inFlight[id] = request
            return false
        }
        if duplicate {
            replyInOrder(OutgoingMessage.error(id: id.json, .invalidRequest("a request with id \(id) is already in flight")), reply)
            return
        }
        let progress = (mcpProgressToken ?? params?["workDoneToken"]).flatMap { token -> ProgressReporter? in
            guard token.kind == .string || token.kind == .integer else { return nil }
            return ProgressReporter(
                token: token, title: method, connection: connection, threshold: server.options.progressThreshold,
                mcp: mcpProgressToken != nil)
        }
        let context = RequestContext(
            method: method, id: id, params: params, server: server, session: self,
            cancellation: request.token, progress: progress)
        // Params are read now, so the request's place in the order can follow the names it
        // uses; a request whose params cannot be read is answered in its method's usual place.
        let prepared: Method.Prepared
        do {
            prepared = try entry.prepare(try Field.params(params))
        } catch {
            prepared = Method.Prepared(ordering: entry.fallbackOrdering, run: { _ in throw error })
        }
        let lane = entry.lane(params)
        scheduler.submit(prepared.ordering) { [self] ticket in
            run(prepared, context, lane: lane, request: request, ticket: ticket, reply: reply)
        }
    }

    /// Runs one request whose turn has come, on its lane; answers it exactly once
    /// and then lets the scheduler go on.
    private func run(
        _ prepared: Method.Prepared, _ context: RequestContext, lane: Lane, request: InFlight,
        ticket: RequestScheduler.Ticket, reply: @escaping @Sendable (JSON?) -> Void
    ) {
        let id = context.id!
        let answer: @Sendable (JSON) -> Void = { [self] response in
            state.withLock { _ = $0.inFlight.removeValue(forKey: id) }
            request.abandon.withLock { $0 = nil }  // it holds `answer`, which holds `request`
            reply(response)
            scheduler.finished(ticket)
        }
        switch lane {
        case .inline:
            answer(execute(prepared, context))
        case .pool:
            server.workQueue.async { [self] in answer(execute(prepared, context)) }
        case .blocking:
            if request.token.isCancelled {
                answer(OutgoingMessage.error(id: id.json, .cancelled))
                return
            }
            let place = ObjectIdentifier(self)
            if let refusal = server.blockingReads.acquire(place) {
                answer(OutgoingMessage.error(id: id.json, refusal))
                return
            }
            request.abandon.withLock {
                $0 = { [self] in
                    guard request.token.claimCancellation() else { return }
                    server.log(.info, "\(context.method) \(id) cancelled while reading; its late result will be discarded")
                    context.progress?.end("cancelled")
                    answer(OutgoingMessage.error(id: id.json, .cancelled))
                }
            }
            // A cancel read before `abandon` was set found nothing to call.
            if request.token.isCancelled { request.abandon.withLock { $0 }?() }
            startThread("distilld.read") { [self] in
                let response = execute(prepared, context)
                server.blockingReads.release(place)
                if request.token.claimResult() { answer(response) }
            }
        }
    }

    private func execute(_ prepared: Method.Prepared, _ context: RequestContext) -> JSON {
        let id = context.id!.json
        server.countRequest()
        let started = ProgressReporter.now()
        defer {
            server.log(.debug, "\(context.method) \(context.id!) answered in \(Int((ProgressReporter.now() - started) * 1e6)) µs")
        }
        if context.cancellation.isCancelled {
            context.progress?.end("cancelled")
            return OutgoingMessage.error(id: id, .cancelled)
        }
        do {
            let result = try prepared.run(context)
            context.progress?.end("done")
            return OutgoingMessage.result(id: id, result)
        } catch let error as ResponseError {
            // A cancelled score carries its partial result in the error.
            context.progress?.end(error.code == .requestCancelled ? "cancelled" : "failed")
            return OutgoingMessage.error(id: id, error)
        } catch is CancellationError {
            context.progress?.end("cancelled")
            return OutgoingMessage.error(id: id, .cancelled)
        } catch {
            context.progress?.end("failed")
            server.log(.error, "\(context.method) failed: \(error)")
            return OutgoingMessage.error(id: id, .internalError("\(error)"))
        }
    }
}

/// Gathers the replies of one batch and sends them together, in request order.
final class BatchCollector: Sendable {
    private let state: Mutex<(replies: [JSON?], remaining: Int)>
    private let done: @Sendable ([JSON]) -> Void

    init(count: Int, done: @escaping @Sendable ([JSON]) -> Void) {
        state = Mutex((Array(repeating: nil, count: count), count))
        self.done = done
    }

    func complete(_ index: Int, _ reply: JSON?) {
        let finished: [JSON]? = state.withLock { state in
            state.replies[index] = reply
            state.remaining -= 1
            return state.remaining == 0 ? state.replies.compactMap { $0 } : nil
        }
        if let finished { done(finished) }
    }
}
