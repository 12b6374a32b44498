import DistillJSON
import DistillProtocol
import DistillStore

/// Every request and notification distilld answers: where a message enters.
///
/// A request is a type in DistillProtocol/Requests (its name, params, ordering and result) and a
/// handler here; adding a method is one new request file, one handler and one line below
/// (CONTRIBUTING in README.md). The order here is the order of `initialize`'s capabilities and of
/// Protocol/README.md.
public enum MethodTable {
    public static let requests: [Method] = [
        .request(InitializeRequest.self, lane: .inline, lifecycle: .initialize, Lifecycle.initialize),
        .request(ShutdownRequest.self, lane: .inline, lifecycle: .shutdown) { _, _ in NullResponse() },
        .request(PingRequest.self, lane: .inline) { request, _ in request.response },
        .request(StatusRequest.self, lane: .inline, Lifecycle.status),
        .request(StopRequest.self, lane: .inline, Lifecycle.stop),
        .request(TeacherLoadRequest.self, lane: .readsFiles, StoreMethods.loadTeacher),
        .request(TeacherListRequest.self, StoreMethods.listTeachers),
        .request(TeacherInfoRequest.self, StoreMethods.teacherInfo),
        .request(TeacherUnloadRequest.self, StoreMethods.unloadTeacher),
        .request(TeacherExportRequest.self, lane: .readsFiles, readingFiles(TeacherExport.handle)),
        .request(TeacherGenerateRequest.self, readingFiles(TeacherGenerate.handle)),
        .request(DatasetLoadRequest.self, lane: .readsFiles, StoreMethods.loadDataset),
        .request(DatasetListRequest.self, StoreMethods.listDatasets),
        .request(DatasetInfoRequest.self, StoreMethods.datasetInfo),
        .request(DatasetUnloadRequest.self, StoreMethods.unloadDataset),
        .request(DatasetExamplesRequest.self, StoreMethods.examples),
        .request(ModelLoadRequest.self, lane: .readsFiles, ModelMethods.load),
        .request(ModelListRequest.self, ModelMethods.list),
        .request(ModelInfoRequest.self, ModelMethods.info),
        .request(ModelUnloadRequest.self, ModelMethods.unload),
        .request(ModelTokenizeRequest.self, ModelMethods.tokenize),
        .request(ModelDetokenizeRequest.self, ModelMethods.detokenize),
        .request(ModelLogprobsRequest.self, readingFiles(ModelMethods.logprobs)),
        .request(ModelGenerateRequest.self, readingFiles(ModelMethods.generate)),
        .request(ScoreRequest.self, lane: .readsFiles, readingFiles(ScoreMethod.handle)),
        .request(SequenceRequest.self, lane: .readsFiles, readingFiles(SequenceMethod.handle)),
        .request(DiagnoseRequest.self, lane: .readsFiles, readingFiles(DiagnoseMethod.handle)),
        .request(ExplainRequest.self, lane: .readsFiles, readingFiles(ExplainMethod.handle)),
        .request(AuditRequest.self, lane: .readsFiles, readingFiles(AuditMethod.handle)),
    ]

    /// Notifications distilld acts on; any other notification is ignored, as JSON-RPC asks.
    public static let notifications: [NotificationEntry] =
        [
            .notification(InitializedNotification.self) { _, _ in nil },
            .notification(ExitNotification.self) { session, _ in .exit(afterShutdown: session.isShutDown) },
            .notification(CancelRequestNotification.self) { session, n in
                session.cancel(n.id)
                return nil
            },
            .notification(SetTraceNotification.self) { session, n in
                let level: LogLevel? = n.value == "verbose" ? .debug : n.value == "messages" ? .info : nil
                session.server.log.subscribe(session.connection, level: level)
                return nil
            },
        ]
        + TextDocumentNotification.Kind.allCases.map { kind in
            NotificationEntry(method: kind.rawValue) { session, params in
                session.editor.handle(try TextDocumentNotification(kind, params: params), in: session)
                return nil
            }
        }

    static let byName: [String: Method] = Dictionary(uniqueKeysWithValues: requests.map { ($0.method, $0) })
    static let notificationsByName: [String: NotificationEntry] = Dictionary(
        uniqueKeysWithValues: notifications.map { ($0.method, $0) })

    public static func lookup(_ method: String) -> Method? { byName[method] }
}

/// One request method: how its params are read and ordered, and where and how it runs.
public struct Method: Sendable {
    /// Where a method's work runs once its turn has come (see `Lane`).
    public enum LaneRule: Sendable {
        /// Cheap, never-blocking lifecycle work, answered on the thread that finds it runnable.
        case inline
        /// Computation on the shared pool.
        case pool
        /// On the pool, or on a thread of its own when the params name a file (not a builtin).
        case readsFiles
    }

    /// Lifecycle requests the session acts on when it reads them, before they run.
    public enum LifecycleStep: Sendable {
        case initialize, shutdown
    }

    /// A request whose params have been read: its place in the session's order and its work.
    struct Prepared: Sendable {
        let ordering: Ordering
        let run: @Sendable (RequestContext) throws -> JSON
    }

    public let method: String
    public let laneRule: LaneRule
    public let lifecycle: LifecycleStep?
    /// The params members the request type accepts (its params schema's `properties`).
    public let keys: Set<String>
    let fallbackOrdering: Ordering
    let prepare: @Sendable (Field) throws -> Prepared

    /// A method given by its request type and a handler that returns the type's response.
    static func request<R: RequestType>(
        _ type: R.Type, lane: LaneRule = .pool, lifecycle: LifecycleStep? = nil,
        _ handler: @escaping @Sendable (R, RequestContext) throws -> R.Response
    ) -> Method {
        Method(
            method: R.method, laneRule: lane, lifecycle: lifecycle, keys: R.keys, fallbackOrdering: R.fallbackOrdering,
            prepare: { params in
                let request = try R(params: params)
                return Prepared(ordering: request.ordering, run: { context in try handler(request, context).json })
            })
    }

    /// Where this request runs: a request that names a file (not a builtin) gets a thread of its
    /// own, since reading it may block.
    func lane(_ params: JSON?) -> Lane {
        switch laneRule {
        case .inline: return .inline
        case .pool: return .pool
        case .readsFiles: return params.map(Self.namesFile) == true ? .blocking : .pool
        }
    }

    /// Whether an object in `params` (arrays of values are not searched) has a `path` member
    /// naming something other than a builtin.
    static func namesFile(_ value: JSON) -> Bool {
        guard let members = value.members else { return false }
        for (key, member) in members {
            if key == "path", let path = member.stringValue, !Builtins.isBuiltin(path) { return true }
            if member.isObject && namesFile(member) { return true }
        }
        return false
    }
}

/// A notification distilld acts on; returns an ending when the client asked to exit.
public struct NotificationEntry: Sendable {
    public let method: String
    let handle: @Sendable (Session, Field) throws -> Session.Ending?

    static func notification<N: NotificationType>(
        _ type: N.Type, _ handle: @escaping @Sendable (Session, N) throws -> Session.Ending?
    ) -> NotificationEntry {
        NotificationEntry(method: N.method) { session, params in try handle(session, try N(params: params)) }
    }
}
