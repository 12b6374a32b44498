/// Why a tokenizer could not be built: the file, member or metadata key at fault, and what is
/// wrong with it.
///
/// `path` locates the fault: a file path for unreadable files, a JSON path such as
/// `model.merges[12]` or `pre_tokenizer.pretokenizers[1].type` for tokenizer.json members, a
/// `tokenizer.ggml.*` key for GGUF metadata.
public struct TokenizerError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// The file could not be read, or is not JSON.
        case unreadable
        /// A member is missing, has the wrong type, or contradicts another.
        case malformed
        /// A well-formed component this tokenizer does not implement (named, with the supported ones).
        case unsupported
    }

    public let kind: Kind
    public let path: String
    public let message: String

    public init(_ kind: Kind, path: String, _ message: String) {
        self.kind = kind
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }

    /// An unsupported component type, naming it and the supported ones.
    static func unsupported(_ what: String, _ name: String, at path: String, supported: [String]) -> TokenizerError {
        TokenizerError(
            .unsupported, path: path,
            "unsupported \(what) \"\(name)\"; supported: \(supported.joined(separator: ", "))")
    }
}
