import Dispatch
import DistillAnalysis
import DistillJSON
import DistillProtocol
import DistillStore
import DistillText

/// The editor path: when an editor opens, changes or saves a JSON Lines file
/// that is a loaded paired dataset, its findings are published on the lines
/// concerned with `textDocument/publishDiagnostics`. Only diagnostics are
/// published: the loaded dataset itself is never changed by an edit.
final class EditorSync: @unchecked Sendable {
    /// Weak: the session owns its editor, and a strong reference back made every
    /// session that saw an editor notification live for ever (found by LeakSanitizer).
    /// Work in flight holds the session strongly until it has run.
    private weak var session: Session?
    /// Serial, so the diagnostics of one document are published in edit order; a
    /// thread of its own, since re-reading a saved file may block.
    private let worker = SerialThread(name: "distilld.editor")
    private var texts: [String: String] = [:]

    init(session: Session) { self.session = session }

    func handle(_ notification: TextDocumentNotification) {
        let uri = notification.uri
        if notification.kind == .didClose {
            inOrder { [self] in
                texts[uri] = nil
                publish(uri, [])
            }
            return
        }
        let text = notification.text
        let version = notification.version
        inOrder { [self, text] in
            if let text { texts[uri] = text }
            guard let current = texts[uri] ?? Self.readFile(uri) else { return }
            guard let dataset = datasetFor(uri) else {
                session?.server.log(.debug, "\(uri) is not a loaded paired dataset: no diagnostics")
                return
            }
            publish(uri, diagnostics(current, dataset: dataset), version: version)
        }
    }

    /// Runs `work` as a read of the session: after the requests read before it (a
    /// `dataset/load` just sent is seen), and before the session ends or a later
    /// `shutdown` answers, so no diagnostic is lost.
    private func inOrder(_ work: @escaping () -> Void) {
        guard let session else { return }
        let worker = self.worker
        session.scheduler.submit(.read) { [session] ticket in
            worker.async { [session] in
                work()
                session.scheduler.finished(ticket)
            }
        }
    }

    /// The loaded paired dataset whose file this URI names, if any.
    private func datasetFor(_ uri: String) -> DatasetEntry? {
        guard let path = Self.path(fromURI: uri) else { return nil }
        guard let registry = session?.server.registry else { return nil }
        for summary in registry.list() where summary.type == .dataset && summary.path == path {
            if let d = try? registry.dataset(summary.name), d.kind == .paired { return d }
        }
        return nil
    }

    /// Integrity findings of the buffer, one diagnostic per example and code, plus
    /// lines that cannot be read.
    func diagnostics(_ text: String, dataset: DatasetEntry) -> [JSON] {
        let source = dataset.source!
        var copy = text
        let parsed = copy.withUTF8 { DatasetLoader.parseLeniently(UnsafeRawBufferPointer($0), source) }
        var out: [JSON] = []
        for problem in parsed.problems {
            let line = (problem.line ?? 1) - 1
            out.append(
                Self.diagnostic(
                    line: line, severity: 1, code: problem.code == .duplicateId ? Finding.duplicateId : "unreadable-line",
                    message: problem.message, data: ["reason": JSON(problem.code.rawValue)]))
        }
        let pairs = parsed.examples.map {
            TextPair(
                id: $0.hasId ? $0.id : nil, full: $0.full, simplified: $0.simplified,
                target: $0.target, label: $0.label?.description)
        }
        for finding in checkPairsPerExample(pairs) where finding.code != Finding.duplicateId {
            for index in finding.exampleIndices {
                let e = parsed.examples[index]
                let data: JSON = ["exampleId": JSON(e.id)]
                for (k, v) in finding.data.sorted(by: { $0.key < $1.key }) { data[k] = JSON(v) }
                out.append(
                    Self.diagnostic(
                        line: e.line - 1, severity: finding.severity.rawValue, code: finding.code, message: finding.message, data: data))
            }
        }
        return out
    }

    static func diagnostic(line: Int, severity: Int, code: String, message: String, data: JSON) -> JSON {
        [
            "range": ["start": ["line": JSON(max(line, 0)), "character": 0], "end": ["line": JSON(max(line, 0) + 1), "character": 0]],
            "severity": JSON(severity), "code": JSON(code), "source": "distilld", "message": JSON(message), "data": data,
        ]
    }

    private func publish(_ uri: String, _ diagnostics: [JSON], version: Int? = nil) {
        session?.connection.send(
            OutgoingMessage.notification(PublishDiagnosticsNotification(uri: uri, version: version, diagnostics: diagnostics)))
    }

    static func readFile(_ uri: String) -> String? {
        guard let path = path(fromURI: uri), let data = FileManagerCompat.read(path) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// `file:///a%20b/c.jsonl` → `/a b/c.jsonl`; nil for other schemes.
    static func path(fromURI uri: String) -> String? {
        guard uri.hasPrefix("file://") else { return nil }
        var rest = Array(uri.utf8.dropFirst(7))
        // file://host/path: only the local host is ours.
        if let slash = rest.firstIndex(of: UInt8(ascii: "/")), slash > 0 {
            let host = String(decoding: rest[..<slash], as: UTF8.self)
            guard host == "localhost" else { return nil }
            rest = Array(rest[slash...])
        }
        var bytes: [UInt8] = []
        var i = 0
        while i < rest.count {
            if rest[i] == UInt8(ascii: "%"), i + 2 < rest.count,
                let v = UInt8(String(decoding: rest[(i + 1)...(i + 2)], as: UTF8.self), radix: 16)
            {
                bytes.append(v)
                i += 3
            } else {
                bytes.append(rest[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
