/// The template's text cut into literal text and tags, with Jinja's whitespace rules applied as
/// transformers configures them (`trim_blocks` and `lstrip_blocks` on, `keep_trailing_newline`
/// off), and each tag's expression cut into tokens.
struct TemplateLexer {
    enum Piece {
        case text(String)
        /// `{{ … }}`
        case output([Token], line: Int)
        /// `{% … %}`
        case statement([Token], line: Int)
    }

    struct Token: Equatable {
        enum Kind: Equatable {
            case name(String)
            case string(String)
            case int(Int)
            case double(Double)
            case op(String)
        }
        var kind: Kind
        var line: Int
    }

    /// Operators, longest first so that `**` is not read as two `*`.
    static let operators = [
        "**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",",
        ".", ":", "|",
    ].map { Array($0.unicodeScalars) }

    let s: [Unicode.Scalar]
    var i = 0
    var line = 1

    init(_ source: String) {
        // Jinja reads every line ending as "\n" and drops one final newline.
        var scalars: [Unicode.Scalar] = []
        var it = Array(source.unicodeScalars)[...]
        while let c = it.popFirst() {
            if c == "\r" {
                if it.first == "\n" { it.removeFirst() }
                scalars.append("\n")
            } else {
                scalars.append(c)
            }
        }
        if scalars.last == "\n" { scalars.removeLast() }
        s = scalars
    }

    func at(_ k: Int) -> Unicode.Scalar? { k < s.count ? s[k] : nil }

    static func isSpace(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" || c == "\n" || c == "\r" || c == "\u{0B}" || c == "\u{0C}" }

    mutating func pieces() throws(TemplateError) -> [Piece] {
        var out: [Piece] = []
        // Whether the text being read starts a line (the template's start, or a tag that ended
        // with a newline): what lstrip_blocks needs to know for text with no newline of its own.
        var lineStarting = true
        while i < s.count {
            var j = i
            while j + 1 < s.count, !(s[j] == "{" && (s[j + 1] == "{" || s[j + 1] == "%" || s[j + 1] == "#")) { j += 1 }
            if j + 1 >= s.count {
                out.append(.text(String(String.UnicodeScalarView(s[i...]))))
                break
            }
            var text = Array(s[i..<j])
            let kind = s[j + 1]
            let sign = at(j + 2)
            if sign == "-" {
                while let last = text.last, Self.isSpace(last) { text.removeLast() }
            } else if sign != "+", kind != "{" {
                // lstrip_blocks: spaces and tabs between a line's start and a block or comment tag go.
                var k = text.count
                while k > 0, text[k - 1] == " " || text[k - 1] == "\t" { k -= 1 }
                if k == 0 ? lineStarting : text[k - 1] == "\n" { text.removeSubrange(k...) }
            }
            line += countNewlines(i..<j)
            if !text.isEmpty { out.append(.text(String(String.UnicodeScalarView(text)))) }
            let tagLine = line
            i = j + 2 + (sign == "-" || sign == "+" ? 1 : 0)
            var rightStrip = false
            var keepNewline = false
            switch kind {
            case "#":
                var k = i
                while k + 1 < s.count, !(s[k] == "#" && s[k + 1] == "}") { k += 1 }
                guard k + 1 < s.count else { throw TemplateError(.syntax, "a comment opened here is never closed with #}", line: tagLine) }
                rightStrip = k > i && s[k - 1] == "-"
                keepNewline = k > i && s[k - 1] == "+"
                line += countNewlines(i..<k)
                i = k + 2
            default:
                let close: Unicode.Scalar = kind == "{" ? "}" : "%"
                let (tokens, strip, plus) = try tagTokens(close: close, opened: tagLine)
                rightStrip = strip
                keepNewline = plus
                out.append(kind == "{" ? .output(tokens, line: tagLine) : .statement(tokens, line: tagLine))
            }
            let tagEnd = i
            if rightStrip {
                while i < s.count, Self.isSpace(s[i]) { i += 1 }
            } else if kind != "{", !keepNewline, at(i) == "\n" {
                i += 1  // trim_blocks: the newline after a block or comment tag goes.
            }
            line += countNewlines(tagEnd..<i)
            lineStarting = i > tagEnd && s[i - 1] == "\n"
        }
        return out
    }

    func countNewlines(_ r: Range<Int>) -> Int { s[r].reduce(0) { $0 + ($1 == "\n" ? 1 : 0) } }

    /// The tokens of one tag, up to its closing `}}` or `%}` outside brackets; whether it closes
    /// with `-` (strip what follows) or `+` (keep the newline).
    mutating func tagTokens(close: Unicode.Scalar, opened: Int) throws(TemplateError) -> ([Token], Bool, Bool) {
        var tokens: [Token] = []
        var depth = 0
        while true {
            while i < s.count, Self.isSpace(s[i]) {
                if s[i] == "\n" { line += 1 }
                i += 1
            }
            guard i < s.count else {
                throw TemplateError(.syntax, "a tag opened here is never closed with \(close == "}" ? "}}" : "%}")", line: opened)
            }
            if depth == 0 {
                if s[i] == close, at(i + 1) == "}" {
                    i += 2
                    return (tokens, false, false)
                }
                let sign = s[i]
                if sign == "-" || sign == "+", at(i + 1) == close, at(i + 2) == "}" {
                    i += 3
                    return (tokens, sign == "-", sign == "+")
                }
            }
            let c = s[i]
            if c == "'" || c == "\"" {
                tokens.append(Token(kind: .string(try stringLiteral(quote: c)), line: line))
            } else if c.properties.isAlphabetic || c == "_" {
                var k = i
                while k < s.count, s[k].properties.isAlphabetic || s[k] == "_" || ("0"..."9").contains(s[k]) { k += 1 }
                tokens.append(Token(kind: .name(String(String.UnicodeScalarView(s[i..<k]))), line: line))
                i = k
            } else if ("0"..."9").contains(c) {
                tokens.append(Token(kind: try number(), line: line))
            } else if let op = Self.operators.first(where: { op in op.indices.allSatisfy { at(i + $0) == op[$0] } }) {
                let name = String(String.UnicodeScalarView(op))
                if name == "(" || name == "[" || name == "{" { depth += 1 }
                if name == ")" || name == "]" || name == "}" { depth = max(0, depth - 1) }
                tokens.append(Token(kind: .op(name), line: line))
                i += op.count
            } else {
                throw TemplateError(.syntax, "unexpected character '\(Character(c))' in a tag", line: line)
            }
        }
    }

    mutating func number() throws(TemplateError) -> Token.Kind {
        var k = i
        var digits = ""
        var isFloat = false
        while k < s.count {
            let c = s[k]
            if ("0"..."9").contains(c) {
                digits.unicodeScalars.append(c)
            } else if c == "_" {
            } else if c == ".", !isFloat, k + 1 < s.count, ("0"..."9").contains(s[k + 1]) {
                isFloat = true
                digits += "."
            } else {
                break
            }
            k += 1
        }
        i = k
        if isFloat, let d = Double(digits) { return .double(d) }
        guard let n = Int(digits) else { throw TemplateError(.syntax, "the number \(digits) is too large", line: line) }
        return .int(n)
    }

    /// A quoted string with Python's escapes (the common ones; `\uXXXX` too).
    mutating func stringLiteral(quote: Unicode.Scalar) throws(TemplateError) -> String {
        let opened = line
        var out = String.UnicodeScalarView()
        i += 1
        while i < s.count {
            let c = s[i]
            if c == quote {
                i += 1
                return String(out)
            }
            if c == "\n" { line += 1 }
            if c == "\\", i + 1 < s.count {
                let e = s[i + 1]
                i += 2
                switch e {
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "r": out.append("\r")
                case "\\": out.append("\\")
                case "'": out.append("'")
                case "\"": out.append("\"")
                case "0": out.append("\0")
                case "u", "x":
                    let width = e == "u" ? 4 : 2
                    let hex = String(String.UnicodeScalarView(s[i..<min(s.count, i + width)]))
                    guard hex.count == width, let v = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(v) else {
                        throw TemplateError(.syntax, "a bad \\\(e) escape in a string", line: line)
                    }
                    out.append(scalar)
                    i += width
                case "\n":
                    line += 1
                default:
                    out.append("\\")
                    out.append(e)
                }
                continue
            }
            out.append(c)
            i += 1
        }
        throw TemplateError(.syntax, "a string opened here is never closed", line: opened)
    }
}
