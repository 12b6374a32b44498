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
        /// Cheap, never-blocking lifecycle work answered on the thread that finds it
        /// runnable, so no busy pool can starve it (see `Lane.inline`).
        let inline: Bool
        /// Whether `params` may name files this request reads (`{"path": ...}`).
        let readsFiles: Bool

        init(method: String, ordering: Ordering, handler: @escaping Handler, inline: Bool = false, readsFiles: Bool = false) {
            self.method = method
            self.ordering = ordering
            self.handler = handler
            self.inline = inline
            self.readsFiles = readsFiles
        }

        /// Where this request runs: a request that names a file (not a builtin) gets
        /// a thread of its own, since reading it may block.
        func lane(_ params: JSON?) -> Lane {
            if inline { return .inline }
            if readsFiles, let params, MethodTable.namesFile(params) { return .blocking }
            return .pool
        }
    }

    public static let requests: [Entry] = [
        Entry(method: "initialize", ordering: .update, handler: Lifecycle.initialize, inline: true),
        Entry(method: "shutdown", ordering: .update, handler: Lifecycle.shutdown, inline: true),
        Entry(method: "distilld/ping", ordering: .read, handler: Lifecycle.ping, inline: true),
        Entry(method: "distilld/status", ordering: .read, handler: Lifecycle.status, inline: true),
        Entry(method: "distilld/stop", ordering: .update, handler: Lifecycle.stop, inline: true),
        Entry(method: "teacher/load", ordering: .update, handler: StoreMethods.loadTeacher, readsFiles: true),
        Entry(method: "teacher/list", ordering: .read, handler: StoreMethods.listTeachers),
        Entry(method: "teacher/info", ordering: .read, handler: StoreMethods.teacherInfo),
        Entry(method: "teacher/unload", ordering: .update, handler: StoreMethods.unloadTeacher),
        Entry(method: "dataset/load", ordering: .update, handler: StoreMethods.loadDataset, readsFiles: true),
        Entry(method: "dataset/list", ordering: .read, handler: StoreMethods.listDatasets),
        Entry(method: "dataset/info", ordering: .read, handler: StoreMethods.datasetInfo),
        Entry(method: "dataset/unload", ordering: .update, handler: StoreMethods.unloadDataset),
        Entry(method: "dataset/examples", ordering: .read, handler: StoreMethods.examples),
        Entry(method: "distill/score", ordering: .read, handler: readingFiles(ScoreMethod.handle), readsFiles: true),
        Entry(method: "distill/sequence", ordering: .read, handler: readingFiles(SequenceMethod.handle), readsFiles: true),
        Entry(method: "distill/diagnose", ordering: .read, handler: readingFiles(DiagnoseMethod.handle), readsFiles: true),
        Entry(method: "distill/explain", ordering: .read, handler: readingFiles(ExplainMethod.handle), readsFiles: true),
    ]

    /// Notifications distilld acts on; any other notification is ignored, as JSON-RPC asks.
    public static let notifications: [String] = [
        "initialized", "exit", "$/cancelRequest", "$/setTrace",
        "textDocument/didOpen", "textDocument/didChange", "textDocument/didSave", "textDocument/didClose",
    ]

    static let byName: [String: Entry] = Dictionary(uniqueKeysWithValues: requests.map { ($0.method, $0) })

    public static func lookup(_ method: String) -> Entry? { byName[method] }

    /// Whether an object in `params` (arrays of values are not searched) has a
    /// `path` member naming something other than a builtin.
    static func namesFile(_ value: JSON) -> Bool {
        guard let members = value.members else { return false }
        for (key, member) in members {
            if key == "path", let path = member.stringValue, !path.hasPrefix("builtin:") { return true }
            if member.isObject && namesFile(member) { return true }
        }
        return false
    }
}
