/// Why a template cannot be read or rendered, with the template's line (1-based) where it is known.
public struct TemplateError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Not valid Jinja (an unclosed tag, a stray `endif`, an unexpected character).
        case syntax
        /// Valid Jinja that distilld does not render; `construct` names it ("filter 'map'").
        case unsupported(construct: String)
        /// The template itself refused, through `raise_exception(message)`.
        case raised
        /// Rendering failed on values (adding a string to a number, an unknown method).
        case evaluation
    }

    public var kind: Kind
    public var message: String
    public var line: Int

    public init(_ kind: Kind, _ message: String, line: Int) {
        self.kind = kind
        self.message = message
        self.line = line
    }

    public var description: String {
        switch kind {
        case .raised: "the template raised an exception at line \(line): \(message)"
        case .unsupported(let construct):
            "line \(line): \(construct) is not supported by distilld's template renderer\(message.isEmpty ? "" : " (\(message))")"
        case .syntax, .evaluation: "line \(line): \(message)"
        }
    }
}
