import DistillJSON

/// The LSP document notifications an editor sends for the JSON Lines files it opens
/// (`textDocumentSync.change = 1`: full text). distilld publishes diagnostics for those that
/// are loaded paired datasets.
public struct TextDocumentNotification: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case didOpen = "textDocument/didOpen"
        case didChange = "textDocument/didChange"
        case didSave = "textDocument/didSave"
        case didClose = "textDocument/didClose"
    }

    public let kind: Kind
    public let uri: String
    public let version: Int?
    /// The document's whole text when the notification carries it (open, change, save with text).
    public let text: String?

    public init(_ kind: Kind, params: Field) throws {
        let document = try params.required("textDocument")
        let uri = try document.required("uri").string()
        self.kind = kind
        self.uri = uri
        self.version = document.json["version"]?.intValue
        switch kind {
        case .didOpen:
            text = document.json["text"]?.stringValue
        case .didChange:
            // Full synchronisation: the last change holds the whole text.
            text = params.json["contentChanges"]?.arrayValue?.last?["text"]?.stringValue
        case .didSave:
            text = params.json["text"]?.stringValue
        case .didClose:
            text = nil
        }
    }
}
