import DistillJSON
import DistillProtocol

/// How a request is ordered against the others of its session.
///
/// Updates (loading or unloading a name, shutdown) wait for every earlier
/// request of the session and hold back later ones; reads run in parallel with
/// each other. So a script may send `teacher/load` and `distill/score` back to
/// back and the score sees the teacher.
public enum Ordering: Sendable {
    case read, update
}

public typealias Handler = @Sendable (RequestContext) throws -> JSON

/// Every request distilld answers: where a request enters. The order here is the
/// order in `initialize`'s capabilities and in Protocol/README.md.
public enum MethodTable {
    public struct Entry: Sendable {
        public let method: String
        public let ordering: Ordering
        public let handler: Handler
    }

    public static let requests: [Entry] = [
        Entry(method: "initialize", ordering: .update, handler: Lifecycle.initialize),
        Entry(method: "shutdown", ordering: .update, handler: Lifecycle.shutdown),
        Entry(method: "distilld/ping", ordering: .read, handler: Lifecycle.ping),
        Entry(method: "distilld/status", ordering: .read, handler: Lifecycle.status),
        Entry(method: "distilld/stop", ordering: .update, handler: Lifecycle.stop),
        Entry(method: "teacher/load", ordering: .update, handler: StoreMethods.loadTeacher),
        Entry(method: "teacher/list", ordering: .read, handler: StoreMethods.listTeachers),
        Entry(method: "teacher/info", ordering: .read, handler: StoreMethods.teacherInfo),
        Entry(method: "teacher/unload", ordering: .update, handler: StoreMethods.unloadTeacher),
        Entry(method: "dataset/load", ordering: .update, handler: StoreMethods.loadDataset),
        Entry(method: "dataset/list", ordering: .read, handler: StoreMethods.listDatasets),
        Entry(method: "dataset/info", ordering: .read, handler: StoreMethods.datasetInfo),
        Entry(method: "dataset/unload", ordering: .update, handler: StoreMethods.unloadDataset),
        Entry(method: "dataset/examples", ordering: .read, handler: StoreMethods.examples),
        Entry(method: "distill/score", ordering: .read, handler: readingFiles(ScoreMethod.handle)),
        Entry(method: "distill/sequence", ordering: .read, handler: readingFiles(SequenceMethod.handle)),
        Entry(method: "distill/diagnose", ordering: .read, handler: readingFiles(DiagnoseMethod.handle)),
        Entry(method: "distill/explain", ordering: .read, handler: readingFiles(ExplainMethod.handle)),
    ]

    /// Notifications distilld acts on; any other notification is ignored, as JSON-RPC asks.
    public static let notifications: [String] = [
        "initialized", "exit", "$/cancelRequest", "$/setTrace",
        "textDocument/didOpen", "textDocument/didChange", "textDocument/didSave", "textDocument/didClose",
    ]

    static let byName: [String: Entry] = Dictionary(uniqueKeysWithValues: requests.map { ($0.method, $0) })

    public static func lookup(_ method: String) -> Entry? { byName[method] }
}
