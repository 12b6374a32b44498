/// Evaluates the nodes with Jinja's semantics as transformers runs them: names are looked up
/// from the innermost loop outwards, a `set` inside a loop stays in that loop, undefined names
/// are falsy and render as nothing.
struct TemplateRenderer {
    /// The most output one rendering may produce, so a template cannot run away with memory;
    /// also the longest string any one operation may build.
    static let maxOutput = 1 << 26
    /// The most items a list built by `+` or `*` may hold (doubling a list forty times would
    /// otherwise take the machine's memory).
    static let maxItems = 1 << 22
    /// The most work (`work`) one rendering may do: a few seconds at most.
    static let maxWork = 1 << 30
    /// The largest `range()` a template may ask for.
    static let maxRange = 1 << 20
    /// The most loop iterations one rendering may run (nested loops over long ranges would
    /// otherwise hold a request for hours while writing nothing).
    static let maxIterations = 1_000_000
    /// How deep the lists and dictionaries a template builds may nest. Walking, printing,
    /// comparing and freeing a value all recurse through it, so a template that wraps a list in
    /// a list a million times would otherwise take the daemon down with a stack overflow.
    static let maxNesting = 128
    /// How deep macros may call macros (a macro may call itself, as in Jinja).
    static let maxCallDepth = 100
    /// The functions the environment provides, as transformers sets it up: Jinja's own
    /// globals and transformers' `raise_exception` and `strftime_now`. Only some can be called
    /// here (`callFunction`); all of them are defined.
    static let globalFunctions: Set<String> = [
        "range", "dict", "namespace", "lipsum", "cycler", "joiner", "raise_exception", "strftime_now",
    ]

    var scopes: [[String: TemplateValue]]
    var namespaces: [TemplateDictionary] = []
    /// The macros defined so far, each with the scopes of the loops it was defined in.
    var macros: [(definition: TemplateMacro, closure: [[String: TemplateValue]])] = []
    var callDepth = 0
    var output = ""
    var line = 1
    var iterations = 0
    var iterationLimit = Self.maxIterations
    /// `maxOutput` and `maxItems`, lowered by tests.
    var outputLimit = Self.maxOutput
    var itemLimit = Self.maxItems
    /// The work the operations so far have done, and the most they may do: the bytes of the
    /// strings and the items of the lists each operation reads and makes. Within the limits
    /// above, a loop of a million iterations could still copy a 64 MiB string each time.
    var work = 0
    var workLimit = Self.maxWork

    enum Flow {
        case normal, breakLoop, continueLoop
    }

    init(variables: [String: TemplateValue]) { scopes = [variables] }

    func fail(_ message: String) -> TemplateError { TemplateError(.evaluation, message, line: line) }

    mutating func run(_ nodes: [Node]) throws(TemplateError) -> Flow {
        for node in nodes {
            switch node {
            case .text(let t): try write(t)
            case .output(let e, let line):
                self.line = line
                try write(try show(try evaluate(e)))
            case .branches(let branches, let otherwise, let line):
                self.line = line
                var taken: [Node]?
                for (condition, body) in branches where try evaluate(condition).truthy {
                    taken = body
                    break
                }
                let flow = try run(taken ?? otherwise)
                if flow != .normal { return flow }
            case .loop(let targets, let over, let filter, let body, let otherwise, let line):
                self.line = line
                try loop(targets: targets, over: over, filter: filter, body: body, otherwise: otherwise)
            case .assign(let name, let attribute, let value, let line):
                self.line = line
                let v = try evaluate(value)
                if let attribute {
                    guard case .namespace(let id) = lookup(name) else {
                        throw fail("'\(name)' is not a namespace; only a namespace takes 'set \(name).\(attribute) = …'")
                    }
                    namespaces[id][attribute] = v
                } else {
                    scopes[scopes.count - 1][name] = v
                }
            case .breakLoop(let line):
                guard scopes.count > 1 else { throw TemplateError(.syntax, "break outside a for loop", line: line) }
                return .breakLoop
            case .continueLoop(let line):
                guard scopes.count > 1 else { throw TemplateError(.syntax, "continue outside a for loop", line: line) }
                return .continueLoop
            case .macro(let definition, let line):
                self.line = line
                macros.append((definition, Array(scopes.dropFirst())))
                scopes[scopes.count - 1][definition.name] = .macro(macros.count - 1)
            }
        }
        return .normal
    }

    mutating func write(_ s: String) throws(TemplateError) {
        output += s
        if output.utf8.count > outputLimit { throw fail("the rendered text passes \(outputLimit >> 20) MiB") }
    }

    /// Python's `str()` of a value, refused when it would pass `maxOutput` bytes: a list of a
    /// million references to one long string is small in memory, but not as text.
    func show(_ v: TemplateValue) throws(TemplateError) -> String {
        if case .string(let s) = v { return s }
        var out = ""
        guard v.appendRepr(to: &out, limit: outputLimit) else { throw stringTooLong }
        return out
    }

    mutating func charge(_ values: [TemplateValue]) throws(TemplateError) {
        for v in values {
            switch v {
            case .string(let s): work += s.utf8.count
            case .list(let l): work += l.count
            case .dict(let d): work += d.keys.count
            default: work += 1
            }
        }
        if work > workLimit {
            throw fail(
                "the template reads and builds more than \(workLimit >> 20) MiB of text and items"
                    + " (a budget that keeps one template from holding the daemon)")
        }
    }

    func checkLength(_ bytes: Int) throws(TemplateError) {
        if bytes > outputLimit { throw stringTooLong }
    }

    var stringTooLong: TemplateError { fail("the template builds a string of more than \(outputLimit >> 20) MiB") }

    func checkCount(_ n: Int) throws(TemplateError) {
        if n > itemLimit { throw fail("the template builds a list of more than \(itemLimit) items") }
    }

    func lookup(_ name: String) -> TemplateValue {
        for scope in scopes.reversed() { if let v = scope[name] { return v } }
        return Self.globalFunctions.contains(name) ? .function(name) : .undefined
    }

    mutating func loop(targets: [String], over: Expr, filter: Expr?, body: [Node], otherwise: [Node]) throws(TemplateError) {
        let loopLine = line
        var items = try iterate(try evaluate(over))
        if let filter {
            var kept: [TemplateValue] = []
            for item in items {
                scopes.append(try bind(targets, item))
                defer { scopes.removeLast() }
                if try evaluate(filter).truthy { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty {
            _ = try run(otherwise)
            return
        }
        for (index, item) in items.enumerated() {
            iterations += 1
            if iterations > iterationLimit { throw fail("the template runs more than \(iterationLimit) loop iterations") }
            var scope = try bind(targets, item)
            let n = items.count
            scope["loop"] = .dict(
                TemplateDictionary([
                    ("index", .int(index + 1)), ("index0", .int(index)), ("revindex", .int(n - index)), ("revindex0", .int(n - index - 1)),
                    ("first", .bool(index == 0)), ("last", .bool(index == n - 1)), ("length", .int(n)),
                    ("previtem", index > 0 ? items[index - 1] : .undefined), ("nextitem", index + 1 < n ? items[index + 1] : .undefined),
                ]))
            scopes.append(scope)
            let flow = try run(body)
            scopes.removeLast()
            line = loopLine
            if flow == .breakLoop { break }
        }
    }

    func bind(_ targets: [String], _ item: TemplateValue) throws(TemplateError) -> [String: TemplateValue] {
        if targets.count == 1 { return [targets[0]: item] }
        let parts = try iterate(item)
        guard parts.count == targets.count else {
            throw fail("cannot unpack \(parts.count) values into \(targets.count) names (\(targets.joined(separator: ", ")))")
        }
        return Dictionary(uniqueKeysWithValues: zip(targets, parts).map { ($0, $1) })
    }

    /// What a for loop walks: a list's items, a dictionary's keys, a string's characters;
    /// nothing for an undefined value.
    func iterate(_ v: TemplateValue) throws(TemplateError) -> [TemplateValue] {
        switch v {
        case .undefined: return []
        case .list(let l): return l
        case .dict(let d): return d.keys.map { .string($0) }
        case .string(let s):
            // Python walks a string by code point, as `length` counts it.
            try checkCount(s.unicodeScalars.count)
            return s.unicodeScalars.map { .string(String($0)) }
        default: throw fail("cannot loop over a \(v.typeName)")
        }
    }

    // MARK: - Expressions

    mutating func evaluate(_ e: Expr) throws(TemplateError) -> TemplateValue {
        switch e {
        case .literal(let v): return v
        case .name(let n): return lookup(n)
        case .list(let items):
            var out: [TemplateValue] = []
            for item in items { out.append(try evaluate(item)) }
            try checkNesting(wrapping: out)
            return .list(out)
        case .dict(let pairs):
            var d = TemplateDictionary()
            var values: [TemplateValue] = []
            for (k, v) in pairs {
                guard case .string(let key) = try evaluate(k) else { throw fail("dictionary keys must be strings here") }
                let value = try evaluate(v)
                d[key] = value
                values.append(value)
            }
            try checkNesting(wrapping: values)
            return .dict(d)
        case .attribute(let base, let name):
            let b = try evaluate(base)
            switch b {
            case .dict(let d): return d[name] ?? .undefined
            case .namespace(let id): return namespaces[id][name] ?? .undefined
            default: return .undefined
            }
        case .item(let base, let index): return try subscriptValue(try evaluate(base), try evaluate(index))
        case .slice(let base, let start, let stop, let step):
            let b = try evaluate(base)
            return try slice(
                b, try start.map { e throws(TemplateError) in try evaluate(e) },
                try stop.map { e throws(TemplateError) in try evaluate(e) },
                try step.map { e throws(TemplateError) in try evaluate(e) })
        case .call(let callee, let args, let named):
            var values: [TemplateValue] = []
            for a in args { values.append(try evaluate(a)) }
            var keywords: [(String, TemplateValue)] = []
            for (n, a) in named { keywords.append((n, try evaluate(a))) }
            let result: TemplateValue
            switch callee {
            case .attribute(let base, let method):
                let b = try evaluate(base)
                result = try callMethod(b, method, values, keywords)
                try charge([b])
            case .name(let function):
                switch lookup(function) {
                case .macro(let id): result = try callMacro(id, values, keywords)
                case .function(let builtin): result = try callFunction(builtin, values, keywords)
                case .undefined: result = try callFunction(function, values, keywords)
                case let other: throw fail("'\(function)' is a \(other.typeName), which cannot be called")
                }
            default: throw TemplateError(.unsupported(construct: "calling a computed value"), "", line: line)
            }
            try charge(values + keywords.map(\.1) + [result])
            return result
        case .filter(let base, let name, let args, let named):
            var values: [TemplateValue] = []
            for a in args { values.append(try evaluate(a)) }
            var keywords: [(String, TemplateValue)] = []
            for (n, a) in named { keywords.append((n, try evaluate(a))) }
            let b = try evaluate(base)
            let result = try applyFilter(name, b, values, keywords)
            try charge([b, result] + values + keywords.map(\.1))
            return result
        case .test(let base, let name, let args, let negated):
            let v = try evaluate(base)
            var values: [TemplateValue] = []
            for a in args { values.append(try evaluate(a)) }
            try charge([v] + values)
            return .bool(try applyTest(name, v, values) != negated)
        case .negate(let inner):
            let v = try evaluate(inner)
            if case .int(let i) = v {
                guard i != .min else { throw overflow("-", i) }
                return .int(-i)
            }
            if case .bool(let b) = v { return .int(b ? -1 : 0) }
            if case .double(let d) = v { return .double(-d) }
            throw fail("cannot negate a \(v.typeName)")
        case .not(let inner): return .bool(!(try evaluate(inner).truthy))
        case .and(let a, let b):
            let left = try evaluate(a)
            return left.truthy ? try evaluate(b) : left
        case .or(let a, let b):
            let left = try evaluate(a)
            return left.truthy ? left : try evaluate(b)
        case .conditional(let condition, let then, let otherwise):
            if try evaluate(condition).truthy { return try evaluate(then) }
            return try otherwise.map { e throws(TemplateError) in try evaluate(e) } ?? .undefined
        case .binary(let op, let a, let b):
            let (x, y) = (try evaluate(a), try evaluate(b))
            let result = try binary(op, x, y)
            try charge([x, y, result])
            return result
        }
    }

    /// Refuses a list or dictionary of `children` that would nest more than `maxNesting` deep.
    /// Every child the check looks at counts against the iteration budget, so wrapping a large
    /// value again and again cannot run for hours either.
    mutating func checkNesting(wrapping children: [TemplateValue]) throws(TemplateError) {
        // Containers to look into, with how deep they sit below the new value (its children: 1).
        var pending: [([TemplateValue], Int)] = [(children, 1)]
        while let (items, level) = pending.popLast() {
            iterations += items.count
            if iterations > iterationLimit { throw fail("the values the template builds pass its budget of \(iterationLimit) steps") }
            for item in items {
                let inner: [TemplateValue]
                switch item {
                case .list(let l): inner = l
                case .dict(let d): inner = d.keys.map { d[$0]! }
                default: continue
                }
                guard level + 1 <= Self.maxNesting else {
                    throw fail("the template nests lists and dictionaries more than \(Self.maxNesting) deep")
                }
                pending.append((inner, level + 1))
            }
        }
    }

    /// A macro's text for these arguments: its body rendered in a scope of its own that sees
    /// the template's top level as it is now, and the loop variables where it was defined, as
    /// Jinja renders a macro.
    mutating func callMacro(_ id: Int, _ args: [TemplateValue], _ keywords: [(String, TemplateValue)]) throws(TemplateError)
        -> TemplateValue
    {
        let (definition, closure) = macros[id]
        guard args.count <= definition.parameters.count else {
            throw fail("macro '\(definition.name)' takes not more than \(definition.parameters.count) argument(s)")
        }
        for (name, _) in keywords {
            // Jinja's words, for a name the macro lacks and for one the positions already gave.
            guard let i = definition.parameters.firstIndex(where: { $0.name == name }), i >= args.count else {
                throw fail("macro '\(definition.name)' takes no keyword argument '\(name)'")
            }
        }
        // A call counts as an iteration, so that macros calling each other cannot run for hours.
        iterations += 1
        if iterations > iterationLimit { throw fail("the template runs more than \(iterationLimit) loop iterations and macro calls") }
        guard callDepth < Self.maxCallDepth else { throw fail("macros call each other more than \(Self.maxCallDepth) deep") }
        let (savedScopes, savedOutput, savedLine) = (scopes, output, line)
        callDepth += 1
        defer {
            callDepth -= 1
            (scopes, output, line) = (savedScopes, savedOutput, savedLine)
        }
        scopes = [scopes[0]] + closure + [[:]]
        output = ""
        let own = scopes.count - 1
        for (i, parameter) in definition.parameters.enumerated() {
            // A default is computed at the call, and may read the parameters before it.
            if i < args.count {
                scopes[own][parameter.name] = args[i]
            } else if let given = keywords.first(where: { $0.0 == parameter.name }) {
                scopes[own][parameter.name] = given.1
            } else if let fallback = parameter.default {
                scopes[own][parameter.name] = try evaluate(fallback)
            }
        }
        if try run(definition.body) != .normal { throw fail("break or continue outside a for loop in macro '\(definition.name)'") }
        return .string(output)
    }

    func subscriptValue(_ base: TemplateValue, _ index: TemplateValue) throws(TemplateError) -> TemplateValue {
        switch (base, index) {
        case (.dict(let d), .string(let k)): return d[k] ?? .undefined
        case (.namespace(let id), .string(let k)): return namespaces[id][k] ?? .undefined
        case (.list(let l), _):
            guard let i = index.integer else { return .undefined }
            let j = i < 0 ? l.count + i : i
            return l.indices.contains(j) ? l[j] : .undefined
        case (.string(let s), _):
            guard let i = index.integer else { return .undefined }
            let chars = Array(s.unicodeScalars)
            let j = i < 0 ? chars.count + i : i
            return chars.indices.contains(j) ? .string(String(chars[j])) : .undefined
        default: return .undefined
        }
    }

    /// Python's slice `base[start:stop:step]` on a list or a string.
    func slice(_ base: TemplateValue, _ start: TemplateValue?, _ stop: TemplateValue?, _ step: TemplateValue?) throws(TemplateError)
        -> TemplateValue
    {
        func bound(_ v: TemplateValue?) throws(TemplateError) -> Int? {
            guard let v, v != .none, v != .undefined else { return nil }
            guard let i = v.integer else { throw fail("slice bounds must be integers, not \(v.typeName)") }
            return i
        }
        let step = try bound(step) ?? 1
        guard step != 0 else { throw fail("a slice step cannot be zero") }
        func indices(_ n: Int) throws(TemplateError) -> [Int] {
            func clamp(_ i: Int?, _ lower: Int, _ upper: Int, _ absent: Int) -> Int {
                guard var i else { return absent }
                if i < 0 { i += n }
                return min(max(i, lower), upper)
            }
            if step > 0 {
                let from = clamp(try bound(start), 0, n, 0)
                let to = clamp(try bound(stop), 0, n, n)
                return from < to ? Array(stride(from: from, to: to, by: step)) : []
            }
            let from = clamp(try bound(start), -1, n - 1, n - 1)
            let to = clamp(try bound(stop), -1, n - 1, -1)
            return from > to ? Array(stride(from: from, to: to, by: step)) : []
        }
        switch base {
        case .list(let l): return .list(try indices(l.count).map { l[$0] })
        case .string(let s):
            let chars = Array(s.unicodeScalars)
            return .string(String(String.UnicodeScalarView(try indices(chars.count).map { chars[$0] })))
        case .undefined: return .undefined
        default: throw fail("cannot slice a \(base.typeName)")
        }
    }

    func binary(_ op: String, _ a: TemplateValue, _ b: TemplateValue) throws(TemplateError) -> TemplateValue {
        switch op {
        case "==": return .bool(a.equals(b))
        case "!=": return .bool(!a.equals(b))
        case "<", "<=", ">", ">=":
            let order: Int
            if let x = a.number, let y = b.number {
                order = x < y ? -1 : (x > y ? 1 : 0)
            } else if case .string(let x) = a, case .string(let y) = b {
                let xs = Array(x.unicodeScalars).map(\.value)
                let ys = Array(y.unicodeScalars).map(\.value)
                order = xs.lexicographicallyPrecedes(ys) ? -1 : (xs == ys ? 0 : 1)
            } else {
                throw fail("cannot compare a \(a.typeName) with a \(b.typeName) by '\(op)'")
            }
            switch op {
            case "<": return .bool(order < 0)
            case "<=": return .bool(order <= 0)
            case ">": return .bool(order > 0)
            default: return .bool(order >= 0)
            }
        case "in":
            switch b {
            case .list(let l): return .bool(l.contains { $0.equals(a) })
            case .dict(let d):
                if case .string(let k) = a { return .bool(d[k] != nil) }
                return .bool(false)
            case .string(let s):
                guard case .string(let needle) = a else { throw fail("'in <string>' needs a string on the left, not a \(a.typeName)") }
                return .bool(Self.contains(s, needle))
            case .undefined: return .bool(false)
            default: throw fail("cannot look for a value in a \(b.typeName)")
            }
        case "~":
            let (x, y) = (try show(a), try show(b))
            try checkLength(x.utf8.count + y.utf8.count)
            return .string(x + y)
        case "+":
            switch (a, b) {
            case (.string(let x), .string(let y)):
                try checkLength(x.utf8.count + y.utf8.count)
                return .string(x + y)
            case (.list(let x), .list(let y)):
                try checkCount(x.count + y.count)
                return .list(x + y)
            default: return try arithmetic(op, a, b)
            }
        case "*":
            // Sizes are checked before anything is built, and without overflowing.
            func times(_ size: Int, _ n: Int) -> Int {
                let (product, overflow) = size.multipliedReportingOverflow(by: max(0, n))
                return overflow ? .max : product
            }
            switch (a, b) {
            case (.string(let s), .int(let n)), (.int(let n), .string(let s)):
                try checkLength(times(s.utf8.count, n))
                return .string(String(repeating: s, count: max(0, n)))
            case (.list(let l), .int(let n)), (.int(let n), .list(let l)):
                try checkCount(times(l.count, n))
                return .list(Array(repeating: l, count: max(0, n)).flatMap { $0 })
            default: return try arithmetic(op, a, b)
            }
        case "%":
            if case .string = a { throw TemplateError(.unsupported(construct: "string formatting with '%'"), "", line: line) }
            return try arithmetic(op, a, b)
        default: return try arithmetic(op, a, b)
        }
    }

    /// Python arithmetic on ints, floats and bools: ints stay ints except under `/`.
    func arithmetic(_ op: String, _ a: TemplateValue, _ b: TemplateValue) throws(TemplateError) -> TemplateValue {
        guard let x = a.number, let y = b.number else {
            throw fail("cannot apply '\(op)' to a \(a.typeName) and a \(b.typeName)")
        }
        if let i = a.integer, let j = b.integer {
            // Python's integers have no bounds; these are 64-bit, and say so rather than wrap.
            func checked(_ result: (partialValue: Int, overflow: Bool)) throws(TemplateError) -> TemplateValue {
                guard !result.overflow else { throw overflow(op, i, j) }
                return .int(result.partialValue)
            }
            switch op {
            case "+": return try checked(i.addingReportingOverflow(j))
            case "-": return try checked(i.subtractingReportingOverflow(j))
            case "*": return try checked(i.multipliedReportingOverflow(by: j))
            case "//", "%":
                guard j != 0 else { throw fail("division by zero") }
                guard !(i == .min && j == -1) else { throw overflow(op, i, j) }
                var q = i / j
                if (i % j != 0) && ((i < 0) != (j < 0)) { q -= 1 }
                return .int(op == "//" ? q : i - q * j)
            case "**" where j >= 0:
                switch i {
                case 0: return .int(j == 0 ? 1 : 0)
                case 1: return .int(1)
                case -1: return .int(j % 2 == 0 ? 1 : -1)
                default: break
                }
                // |i| ≥ 2 overflows within 63 steps.
                var r = 1
                for _ in 0..<j {
                    let (product, overflowed) = r.multipliedReportingOverflow(by: i)
                    guard !overflowed else { throw overflow(op, i, j) }
                    r = product
                }
                return .int(r)
            default: break
            }
        }
        switch op {
        case "+": return .double(x + y)
        case "-": return .double(x - y)
        case "*": return .double(x * y)
        case "/":
            guard y != 0 else { throw fail("division by zero") }
            return .double(x / y)
        case "//", "%":
            guard y != 0 else { throw fail("division by zero") }
            let q = (x / y).rounded(.down)
            return .double(op == "//" ? q : x - q * y)
        case "**": return .double(try pow(x, y))
        default: throw fail("unknown operator '\(op)'")
        }
    }

    /// Python's `needle in s`: on code points, where Swift's `contains` matches whole grapheme
    /// clusters only (`"e" in "e\u{301}"` is true in Python).
    static func contains(_ s: String, _ needle: String) -> Bool {
        let (haystack, pattern) = (Array(s.unicodeScalars), Array(needle.unicodeScalars))
        guard pattern.count <= haystack.count else { return false }
        return (0...(haystack.count - pattern.count)).contains { haystack.hasOccurrence(of: pattern, at: $0) }
    }

    func overflow(_ op: String, _ i: Int, _ j: Int? = nil) -> TemplateError {
        let expression = j.map { "\(i) \(op) \($0)" } ?? "\(op)(\(i))"
        return fail("\(expression) does not fit in 64 bits (Python's integers are unbounded; a template's here are not)")
    }

    func pow(_ x: Double, _ y: Double) throws(TemplateError) -> Double {
        guard y == y.rounded(), abs(y) <= 64 else {
            throw TemplateError(.unsupported(construct: "'**' with a fractional or large exponent"), "", line: line)
        }
        var r = 1.0
        for _ in 0..<Int(abs(y)) { r *= x }
        return y < 0 ? 1 / r : r
    }
}
