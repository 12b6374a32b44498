/// What went wrong in the n-gram layer, as one sentence a person can act on.
///
/// ARPA problems carry the 1-based line they were found on, so a message reads
/// `model.arpa line 12: duplicate 2-gram "a b" (first on line 9)`. Nothing is
/// half-loaded: a reader or builder that throws leaves no model behind.
public struct NGramError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The file could not be opened or read (missing, a directory, no permission, not ARPA text).
        case file
        /// The ARPA text breaks the format or disagrees with itself.
        case format
        /// A Kneser–Ney estimate cannot be made from the given text and options.
        case build
    }

    public let kind: Kind
    /// The file named in the message, when there is one.
    public let path: String?
    /// The 1-based line of an ARPA file, when the problem is on one line.
    public let line: Int?
    public let message: String

    public init(_ kind: Kind, path: String? = nil, line: Int? = nil, _ message: String) {
        self.kind = kind
        self.path = path
        self.line = line
        self.message = message
    }

    public var description: String {
        var prefix = ""
        if let path { prefix = path }
        if let line { prefix += prefix.isEmpty ? "line \(line)" : " line \(line)" }
        return prefix.isEmpty ? message : "\(prefix): \(message)"
    }

    func at(path: String?) -> NGramError { NGramError(kind, path: path, line: line, message) }
}
