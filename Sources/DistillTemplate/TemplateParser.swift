/// An expression inside a tag.
indirect enum Expr: Sendable {
    case literal(TemplateValue)
    case name(String)
    case list([Expr])
    case dict([(Expr, Expr)])
    case attribute(Expr, String)
    case item(Expr, Expr)
    case slice(Expr, Expr?, Expr?, Expr?)
    case call(Expr, [Expr], [(String, Expr)])
    case filter(Expr, String, [Expr], [(String, Expr)])
    case test(Expr, String, [Expr], negated: Bool)
    case negate(Expr)
    case not(Expr)
    case binary(String, Expr, Expr)
    case and(Expr, Expr)
    case or(Expr, Expr)
    case conditional(Expr, then: Expr, otherwise: Expr?)
}

/// A statement of the template, in order.
indirect enum Node: Sendable {
    case text(String)
    case output(Expr, line: Int)
    case branches([(Expr, [Node])], otherwise: [Node], line: Int)
    case loop(targets: [String], over: Expr, filter: Expr?, body: [Node], otherwise: [Node], line: Int)
    /// `set name = value`, or `set namespace.attribute = value` when `attribute` is given.
    case assign(String, attribute: String?, Expr, line: Int)
    case breakLoop(line: Int)
    case continueLoop(line: Int)
    /// `macro name(parameter, parameter=default, …)`: binds `name` in the current scope.
    case macro(TemplateMacro, line: Int)
}

/// A macro's definition: its parameters (with their default expressions) and its body.
struct TemplateMacro: Sendable {
    var name: String
    var parameters: [(name: String, default: Expr?)]
    var body: [Node]
}

/// Reads the lexer's pieces into nodes. Every filter and test is checked against what the
/// renderer knows here, so an unsupported one is refused before anything renders (as Jinja
/// refuses an unknown filter when it compiles the template).
struct TemplateParser {
    static let filters: Set<String> = [
        "trim", "length", "count", "upper", "lower", "tojson", "default", "d", "first", "last", "join", "string", "int", "float",
        "capitalize", "title", "replace", "list", "reverse", "safe", "abs", "items", "selectattr", "rejectattr", "map",
    ]
    static let tests: Set<String> = [
        "defined", "undefined", "none", "string", "number", "integer", "float", "boolean", "true", "false", "mapping", "sequence",
        "iterable", "even", "odd", "divisibleby", "equalto", "eq", "ne", "lower", "upper",
    ]
    /// Statements that are valid Jinja but not rendered here, refused by name.
    static let unsupportedStatements: Set<String> = [
        "call", "filter", "block", "extends", "include", "import", "from", "raw", "with", "autoescape", "do",
    ]
    static let maxDepth = 200

    var pieces: [TemplateLexer.Piece]
    var p = 0
    var depth = 0

    init(_ pieces: [TemplateLexer.Piece]) { self.pieces = pieces }

    static func parse(_ source: String) throws(TemplateError) -> [Node] {
        var lexer = TemplateLexer(source)
        var parser = TemplateParser(try lexer.pieces())
        let (nodes, end) = try parser.block(until: [])
        if let end { throw TemplateError(.syntax, "'\(end.keyword)' with no block open", line: end.line) }
        return nodes
    }

    struct End {
        var keyword: String
        var tokens: TokenStream
        var line: Int
    }

    /// Nodes up to one of the `until` keywords (returned with the rest of its tag), or the end.
    mutating func block(until: Set<String>) throws(TemplateError) -> ([Node], End?) {
        var nodes: [Node] = []
        while p < pieces.count {
            let piece = pieces[p]
            p += 1
            switch piece {
            case .text(let t): nodes.append(.text(t))
            case .output(let tokens, let line):
                var stream = TokenStream(tokens, line: line)
                let e = try stream.expression()
                try stream.expectEnd("}}")
                nodes.append(.output(e, line: line))
            case .statement(let tokens, let line):
                var stream = TokenStream(tokens, line: line)
                guard case .name(let keyword) = stream.next()?.kind else {
                    throw TemplateError(.syntax, "a {% %} tag must start with a statement name", line: line)
                }
                if until.contains(keyword) { return (nodes, End(keyword: keyword, tokens: stream, line: line)) }
                nodes.append(contentsOf: try statement(keyword, &stream, line: line))
            }
        }
        if let first = until.first(where: { $0.hasPrefix("end") }) {
            throw TemplateError(.syntax, "the template ends inside a block; expected '\(first)'", line: lastLine)
        }
        return (nodes, nil)
    }

    var lastLine: Int {
        for piece in pieces.reversed() {
            switch piece {
            case .output(_, let line), .statement(_, let line): return line
            case .text: continue
            }
        }
        return 1
    }

    mutating func statement(_ keyword: String, _ stream: inout TokenStream, line: Int) throws(TemplateError) -> [Node] {
        depth += 1
        defer { depth -= 1 }
        if depth > Self.maxDepth {
            throw TemplateError(.unsupported(construct: "blocks nested over \(Self.maxDepth) deep"), "", line: line)
        }
        switch keyword {
        case "if":
            var branches: [(Expr, [Node])] = []
            var condition = try stream.expression()
            try stream.expectEnd("%}")
            while true {
                let (body, end) = try block(until: ["elif", "else", "endif"])
                branches.append((condition, body))
                guard var end else { throw TemplateError(.syntax, "an if opened here is never closed with endif", line: line) }
                switch end.keyword {
                case "elif":
                    condition = try end.tokens.expression()
                    try end.tokens.expectEnd("%}")
                case "else":
                    try end.tokens.expectEnd("%}")
                    let (otherwise, close) = try block(until: ["endif"])
                    guard var close else { throw TemplateError(.syntax, "an if opened here is never closed with endif", line: line) }
                    try close.tokens.expectEnd("%}")
                    return [.branches(branches, otherwise: otherwise, line: line)]
                default:
                    try end.tokens.expectEnd("%}")
                    return [.branches(branches, otherwise: [], line: line)]
                }
            }
        case "for":
            var targets = [try stream.name()]
            while stream.accept(op: ",") { targets.append(try stream.name()) }
            guard stream.accept(name: "in") else { throw TemplateError(.syntax, "expected 'in' in a for tag", line: line) }
            let over = try stream.expression(conditional: false)
            var filter: Expr?
            if stream.accept(name: "if") { filter = try stream.expression(conditional: false) }
            if stream.accept(name: "recursive") { throw TemplateError(.unsupported(construct: "a recursive for loop"), "", line: line) }
            try stream.expectEnd("%}")
            let (body, end) = try block(until: ["else", "endfor"])
            guard var end else { throw TemplateError(.syntax, "a for opened here is never closed with endfor", line: line) }
            try end.tokens.expectEnd("%}")
            var otherwise: [Node] = []
            if end.keyword == "else" {
                let (rest, close) = try block(until: ["endfor"])
                guard var close else { throw TemplateError(.syntax, "a for opened here is never closed with endfor", line: line) }
                try close.tokens.expectEnd("%}")
                otherwise = rest
            }
            return [.loop(targets: targets, over: over, filter: filter, body: body, otherwise: otherwise, line: line)]
        case "set":
            let target = try stream.name()
            var attribute: String?
            if stream.accept(op: ".") { attribute = try stream.name() }
            if stream.accept(op: ",") { throw TemplateError(.unsupported(construct: "a set of several names"), "", line: line) }
            guard stream.accept(op: "=") else {
                throw TemplateError(.unsupported(construct: "a block set ({% set x %}…{% endset %})"), "", line: line)
            }
            let value = try stream.expression()
            try stream.expectEnd("%}")
            return [.assign(target, attribute: attribute, value, line: line)]
        case "break":
            try stream.expectEnd("%}")
            return [.breakLoop(line: line)]
        case "continue":
            try stream.expectEnd("%}")
            return [.continueLoop(line: line)]
        case "macro":
            let name = try stream.name()
            try stream.expect(op: "(")
            var parameters: [(name: String, default: Expr?)] = []
            if !stream.accept(op: ")") {
                repeat {
                    let parameter = try stream.name()
                    if parameters.contains(where: { $0.name == parameter }) {
                        throw TemplateError(.syntax, "the macro '\(name)' names the parameter '\(parameter)' twice", line: line)
                    }
                    parameters.append((parameter, stream.accept(op: "=") ? try stream.expression() : nil))
                } while stream.accept(op: ",")
                try stream.expect(op: ")")
            }
            try stream.expectEnd("%}")
            let (body, end) = try block(until: ["endmacro"])
            guard var end else { throw TemplateError(.syntax, "a macro opened here is never closed with endmacro", line: line) }
            try end.tokens.expectEnd("%}")
            return [.macro(TemplateMacro(name: name, parameters: parameters, body: body), line: line)]
        case "generation":
            // transformers' marker of the assistant's text (for its masks): renders its body as is.
            try stream.expectEnd("%}")
            let (body, end) = try block(until: ["endgeneration"])
            guard var end else { throw TemplateError(.syntax, "a generation block is never closed", line: line) }
            try end.tokens.expectEnd("%}")
            return body
        default:
            if Self.unsupportedStatements.contains(keyword) {
                throw TemplateError(.unsupported(construct: "the '\(keyword)' statement"), "", line: line)
            }
            throw TemplateError(.syntax, "unknown statement '\(keyword)'", line: line)
        }
    }
}

/// The tokens of one tag, read by a recursive-descent parser with Jinja's precedence
/// (lowest first): `x if c else y`, `or`, `and`, `not`, comparisons and `in`, `+ -`, `~`,
/// `* / // %`, `**`, unary `-`, then postfix subscripts, calls, filters and tests.
struct TokenStream {
    var tokens: [TemplateLexer.Token]
    var k = 0
    let line: Int
    var depth = 0

    init(_ tokens: [TemplateLexer.Token], line: Int) {
        self.tokens = tokens
        self.line = line
    }

    var peek: TemplateLexer.Token.Kind? { k < tokens.count ? tokens[k].kind : nil }
    var here: Int { k < tokens.count ? tokens[k].line : (tokens.last?.line ?? line) }

    mutating func next() -> TemplateLexer.Token? {
        defer { k += 1 }
        return k < tokens.count ? tokens[k] : nil
    }

    mutating func accept(op: String) -> Bool {
        if peek == .op(op) {
            k += 1
            return true
        }
        return false
    }

    mutating func accept(name: String) -> Bool {
        if peek == .name(name) {
            k += 1
            return true
        }
        return false
    }

    mutating func expect(op: String) throws(TemplateError) {
        guard accept(op: op) else { throw TemplateError(.syntax, "expected '\(op)'\(found)", line: here) }
    }

    var found: String {
        switch peek {
        case nil: " before the tag's end"
        case .name(let n): ", found '\(n)'"
        case .op(let o): ", found '\(o)'"
        case .string(let s): ", found the string \(TemplateValue.pythonRepr(s))"
        case .int(let i): ", found \(i)"
        case .double(let d): ", found \(d)"
        }
    }

    mutating func expectEnd(_ close: String) throws(TemplateError) {
        guard k >= tokens.count else { throw TemplateError(.syntax, "expected the end of the tag (\(close))\(found)", line: here) }
    }

    mutating func name() throws(TemplateError) -> String {
        guard case .name(let n) = peek else { throw TemplateError(.syntax, "expected a name\(found)", line: here) }
        k += 1
        return n
    }

    mutating func expression(conditional: Bool = true) throws(TemplateError) -> Expr {
        depth += 1
        defer { depth -= 1 }
        if depth > TemplateParser.maxDepth {
            throw TemplateError(.unsupported(construct: "an expression nested over \(TemplateParser.maxDepth) deep"), "", line: here)
        }
        let value = try or()
        guard conditional, accept(name: "if") else { return value }
        let condition = try or()
        let otherwise = accept(name: "else") ? try expression() : nil
        return .conditional(condition, then: value, otherwise: otherwise)
    }

    mutating func or() throws(TemplateError) -> Expr {
        var e = try and()
        while accept(name: "or") { e = .or(e, try and()) }
        return e
    }

    mutating func and() throws(TemplateError) -> Expr {
        var e = try not()
        while accept(name: "and") { e = .and(e, try not()) }
        return e
    }

    mutating func not() throws(TemplateError) -> Expr {
        if accept(name: "not") { return .not(try not()) }
        return try compare()
    }

    mutating func compare() throws(TemplateError) -> Expr {
        var e = try sum()
        while true {
            if case .op(let o) = peek, ["==", "!=", "<", "<=", ">", ">="].contains(o) {
                k += 1
                e = .binary(o, e, try sum())
            } else if accept(name: "in") {
                e = .binary("in", e, try sum())
            } else if peek == .name("not"), k + 1 < tokens.count, tokens[k + 1].kind == .name("in") {
                k += 2
                e = .not(.binary("in", e, try sum()))
            } else {
                return e
            }
        }
    }

    mutating func sum() throws(TemplateError) -> Expr {
        var e = try concat()
        while case .op(let o) = peek, o == "+" || o == "-" {
            k += 1
            e = .binary(o, e, try concat())
        }
        return e
    }

    mutating func concat() throws(TemplateError) -> Expr {
        var e = try product()
        while accept(op: "~") { e = .binary("~", e, try product()) }
        return e
    }

    mutating func product() throws(TemplateError) -> Expr {
        var e = try power()
        while case .op(let o) = peek, ["*", "/", "//", "%"].contains(o) {
            k += 1
            e = .binary(o, e, try power())
        }
        return e
    }

    mutating func power() throws(TemplateError) -> Expr {
        var e = try unary()
        while accept(op: "**") { e = .binary("**", e, try unary()) }
        return e
    }

    mutating func unary() throws(TemplateError) -> Expr {
        if accept(op: "-") { return try filters(.negate(try unaryNoFilter())) }
        if accept(op: "+") { return try filters(try unaryNoFilter()) }
        return try filters(try postfix(try primary()))
    }

    mutating func unaryNoFilter() throws(TemplateError) -> Expr {
        if accept(op: "-") { return .negate(try unaryNoFilter()) }
        return try postfix(try primary())
    }

    mutating func primary() throws(TemplateError) -> Expr {
        guard let token = next() else { throw TemplateError(.syntax, "expected an expression before the tag's end", line: here) }
        switch token.kind {
        case .name(let n):
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n)
            }
        case .string(var s):
            while case .string(let more) = peek {
                s += more
                k += 1
            }
            return .literal(.string(s))
        case .int(let i): return .literal(.int(i))
        case .double(let d): return .literal(.double(d))
        case .op("("):
            if accept(op: ")") { return .list([]) }
            let e = try expression()
            if accept(op: ",") {
                var items = [e]
                while !accept(op: ")") {
                    items.append(try expression())
                    if !accept(op: ",") {
                        try expect(op: ")")
                        break
                    }
                }
                return .list(items)
            }
            try expect(op: ")")
            return e
        case .op("["):
            var items: [Expr] = []
            while !accept(op: "]") {
                items.append(try expression())
                if !accept(op: ",") {
                    try expect(op: "]")
                    break
                }
            }
            return .list(items)
        case .op("{"):
            var pairs: [(Expr, Expr)] = []
            while !accept(op: "}") {
                let key = try expression()
                try expect(op: ":")
                pairs.append((key, try expression()))
                if !accept(op: ",") {
                    try expect(op: "}")
                    break
                }
            }
            return .dict(pairs)
        default:
            k -= 1
            throw TemplateError(.syntax, "expected an expression\(found)", line: here)
        }
    }

    mutating func postfix(_ base: Expr) throws(TemplateError) -> Expr {
        var e = base
        while true {
            if accept(op: ".") {
                if case .int(let i) = peek {
                    k += 1
                    e = .item(e, .literal(.int(i)))
                } else {
                    e = .attribute(e, try name())
                }
            } else if accept(op: "[") {
                var parts: [Expr?] = [nil]
                var colons = 0
                while !accept(op: "]") {
                    if accept(op: ":") {
                        colons += 1
                        parts.append(nil)
                        guard colons <= 2 else { throw TemplateError(.syntax, "a slice has at most two colons", line: here) }
                    } else {
                        guard parts[parts.count - 1] == nil else { throw TemplateError(.syntax, "expected ']'\(found)", line: here) }
                        parts[parts.count - 1] = try expression()
                    }
                }
                if colons == 0 {
                    guard let index = parts[0] else { throw TemplateError(.syntax, "an empty subscript", line: here) }
                    e = .item(e, index)
                } else {
                    while parts.count < 3 { parts.append(nil) }
                    e = .slice(e, parts[0], parts[1], parts[2])
                }
            } else if peek == .op("(") {
                k += 1
                let (args, named) = try arguments()
                e = .call(e, args, named)
            } else {
                return e
            }
        }
    }

    /// Call arguments after the opening parenthesis, through the closing one.
    mutating func arguments() throws(TemplateError) -> ([Expr], [(String, Expr)]) {
        var args: [Expr] = []
        var named: [(String, Expr)] = []
        while !accept(op: ")") {
            if case .name(let n) = peek, k + 1 < tokens.count, tokens[k + 1].kind == .op("=") {
                k += 2
                named.append((n, try expression()))
            } else {
                if case .op(let o) = peek, o == "*" || o == "**" {
                    throw TemplateError(.unsupported(construct: "argument unpacking (\(o))"), "", line: here)
                }
                args.append(try expression())
            }
            if !accept(op: ",") {
                try expect(op: ")")
                break
            }
        }
        return (args, named)
    }

    mutating func filters(_ base: Expr) throws(TemplateError) -> Expr {
        var e = base
        while true {
            if accept(op: "|") {
                let at = here
                let name = try name()
                guard TemplateParser.filters.contains(name) else {
                    throw TemplateError(.unsupported(construct: "the filter '\(name)'"), "", line: at)
                }
                var args: [Expr] = []
                var named: [(String, Expr)] = []
                if accept(op: "(") { (args, named) = try arguments() }
                e = .filter(e, name, args, named)
            } else if accept(name: "is") {
                let negated = accept(name: "not")
                let at = here
                var name: String
                if case .op("==") = peek {
                    k += 1
                    name = "eq"
                } else {
                    name = try self.name()
                    if ["none", "true", "false"].contains(name.lowercased()) { name = name.lowercased() }
                }
                guard TemplateParser.tests.contains(name) else {
                    throw TemplateError(.unsupported(construct: "the test '\(name)'"), "", line: at)
                }
                var args: [Expr] = []
                if accept(op: "(") {
                    (args, _) = try arguments()
                } else if let kind = peek, startsArgument(kind) {
                    args = [try postfix(try primary())]
                }
                e = .test(e, name, args, negated: negated)
            } else {
                return e
            }
        }
    }

    /// Whether a test takes the token after its name as its argument (`x is divisibleby 3`).
    func startsArgument(_ kind: TemplateLexer.Token.Kind) -> Bool {
        switch kind {
        case .string, .int, .double: true
        case .name(let n): !["and", "or", "else", "if", "in", "not", "is"].contains(n)
        case .op(let o): o == "[" || o == "{"
        }
    }
}
