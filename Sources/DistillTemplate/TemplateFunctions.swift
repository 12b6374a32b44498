#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The functions, methods, filters and tests the renderer knows: the ones chat templates in
/// common use call, each with Python's meaning.
extension TemplateRenderer {
    func argument(_ args: [TemplateValue], _ keywords: [(String, TemplateValue)], _ i: Int, _ name: String) -> TemplateValue? {
        if i < args.count { return args[i] }
        return keywords.first { $0.0 == name }?.1
    }

    func string(_ v: TemplateValue?, _ what: String) throws(TemplateError) -> String? {
        guard let v, v != .none else { return nil }
        guard case .string(let s) = v else { throw fail("\(what) must be a string, not a \(v.typeName)") }
        return s
    }

    mutating func callFunction(_ name: String, _ args: [TemplateValue], _ keywords: [(String, TemplateValue)]) throws(TemplateError)
        -> TemplateValue
    {
        switch name {
        case "raise_exception":
            throw TemplateError(.raised, try args.first.map { v throws(TemplateError) in try show(v) } ?? "", line: line)
        case "range":
            let bounds = args.compactMap(\.integer)
            guard bounds.count == args.count, (1...3).contains(bounds.count) else { throw fail("range() takes one to three integers") }
            let (from, to, step) =
                bounds.count == 1 ? (0, bounds[0], 1) : (bounds[0], bounds[1], bounds.count == 3 ? bounds[2] : 1)
            guard step != 0 else { throw fail("range() step cannot be zero") }
            // In Double, so that bounds far apart cannot overflow.
            let span = (Double(to) - Double(from)) / Double(step)
            let count = span > 0 ? span.rounded(.up) : 0
            guard count <= Double(min(Self.maxRange, itemLimit)) else {
                throw fail("range() of \(count > 1e18 ? "so many" : String(Int(count))) items is more than a template needs")
            }
            return .list(Array(stride(from: from, to: to, by: step)).map { .int($0) })
        case "namespace", "dict":
            var d = TemplateDictionary()
            for a in args {
                guard case .dict(let given) = a else { throw fail("\(name)() takes a dictionary or name=value pairs") }
                for k in given.keys { d[k] = given[k] }
            }
            for (k, v) in keywords { d[k] = v }
            if name == "dict" {
                try checkNesting(wrapping: d.keys.map { d[$0]! })
                return .dict(d)
            }
            namespaces.append(d)
            return .namespace(namespaces.count - 1)
        case "strftime_now":
            guard let format = try string(argument(args, keywords, 0, "format"), "strftime_now's format") else {
                throw fail("strftime_now() needs a format")
            }
            return .string(try Self.strftimeNow(format, line: line))
        default:
            throw TemplateError(.unsupported(construct: "the function '\(name)'"), "", line: line)
        }
    }

    func callMethod(_ base: TemplateValue, _ method: String, _ args: [TemplateValue], _ keywords: [(String, TemplateValue)])
        throws(TemplateError) -> TemplateValue
    {
        switch base {
        case .string(let s):
            switch method {
            case "strip", "lstrip", "rstrip":
                let chars = try string(argument(args, keywords, 0, "chars"), "strip's argument")
                return .string(Self.strip(s, chars, left: method != "rstrip", right: method != "lstrip"))
            case "startswith", "endswith":
                guard let a = argument(args, keywords, 0, "prefix") else { throw fail("\(method)() needs an argument") }
                let options: [TemplateValue] = if case .list(let l) = a { l } else { [a] }
                for o in options {
                    guard case .string(let x) = o else { throw fail("\(method)() takes strings, not a \(o.typeName)") }
                    let hit =
                        method == "startswith"
                        ? s.unicodeScalars.starts(with: x.unicodeScalars)
                        : s.unicodeScalars.reversed().starts(with: x.unicodeScalars.reversed())
                    if hit { return .bool(true) }
                }
                return .bool(false)
            case "upper": return .string(s.uppercased())
            case "lower": return .string(s.lowercased())
            case "title": return .string(Self.title(s))
            case "capitalize": return .string(Self.capitalize(s))
            case "split":
                let separator = try string(argument(args, keywords, 0, "sep"), "split's separator")
                return .list(try Self.split(s, separator, line: line).map { .string($0) })
            case "replace":
                guard let old = try string(argument(args, keywords, 0, "old"), "replace's first argument"),
                    let new = try string(argument(args, keywords, 1, "new"), "replace's second argument")
                else { throw fail("replace() needs two strings") }
                return .string(try replace(s, old, new))
            default: break
            }
        case .dict(let d):
            switch method {
            case "items": return .list(d.keys.map { .list([.string($0), d[$0]!]) })
            case "keys": return .list(d.keys.map { .string($0) })
            case "values": return .list(d.keys.map { d[$0]! })
            case "get":
                guard case .string(let k) = argument(args, keywords, 0, "key") ?? .none else {
                    return argument(args, keywords, 1, "default") ?? .none
                }
                return d[k] ?? argument(args, keywords, 1, "default") ?? .none
            default: break
            }
        case .undefined:
            throw fail("'\(method)()' called on an undefined value")
        default: break
        }
        throw TemplateError(.unsupported(construct: "the method '\(method)' of a \(base.typeName)"), "", line: line)
    }

    func applyFilter(_ name: String, _ v: TemplateValue, _ args: [TemplateValue], _ keywords: [(String, TemplateValue)])
        throws(TemplateError) -> TemplateValue
    {
        switch name {
        case "trim":
            let chars = try string(argument(args, keywords, 0, "chars"), "trim's argument")
            return .string(Self.strip(try show(v), chars, left: true, right: true))
        case "length", "count":
            switch v {
            case .string(let s): return .int(s.unicodeScalars.count)
            case .list(let l): return .int(l.count)
            case .dict(let d): return .int(d.keys.count)
            case .undefined: return .int(0)
            default: throw fail("a \(v.typeName) has no length")
            }
        case "upper": return .string(try show(v).uppercased())
        case "lower": return .string(try show(v).lowercased())
        case "capitalize": return .string(Self.capitalize(try show(v)))
        case "title": return .string(Self.title(try show(v)))
        case "string", "safe": return v == .undefined ? .string("") : (name == "string" ? .string(try show(v)) : v)
        case "tojson":
            // transformers' own filter: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
            for (k, _) in keywords where !["ensure_ascii", "indent", "separators", "sort_keys"].contains(k) {
                throw fail("tojson() takes no argument '\(k)'")
            }
            guard args.count <= 4 else { throw fail("tojson() takes at most four arguments") }
            return .string(try json(v, try jsonStyle(args, keywords)))
        case "default", "d":
            let fallback = argument(args, keywords, 0, "default_value") ?? .string("")
            let boolean = argument(args, keywords, 1, "boolean")?.truthy ?? false
            return v == .undefined || (boolean && !v.truthy) ? fallback : v
        case "first", "last":
            let items = try iterate(v)
            return (name == "first" ? items.first : items.last) ?? .undefined
        case "join":
            let separator = try string(argument(args, keywords, 0, "d"), "join's separator") ?? ""
            if argument(args, keywords, 1, "attribute") != nil {
                throw TemplateError(.unsupported(construct: "join with an attribute"), "", line: line)
            }
            var parts: [String] = []
            var bytes = 0
            for (i, item) in try iterate(v).enumerated() {
                let part = try show(item)
                bytes += part.utf8.count + (i > 0 ? separator.utf8.count : 0)
                try checkLength(bytes)
                parts.append(part)
            }
            return .string(parts.joined(separator: separator))
        case "int":
            if let i = v.integer { return .int(i) }
            if case .double(let d) = v, d.isFinite, abs(d) < 9e18 { return .int(Int(d)) }
            if case .string(let s) = v, let i = Int(s.trimmingPythonSpace) { return .int(i) }
            return argument(args, keywords, 0, "default") ?? .int(0)
        case "float":
            if let d = v.number { return .double(d) }
            if case .string(let s) = v, let d = Double(s.trimmingPythonSpace) { return .double(d) }
            return argument(args, keywords, 0, "default") ?? .double(0)
        case "abs":
            if case .int(let i) = v {
                guard i != .min else { throw overflow("abs", i) }
                return .int(abs(i))
            }
            if let d = v.number { return .double(abs(d)) }
            throw fail("abs of a \(v.typeName)")
        case "replace":
            guard let old = try string(argument(args, keywords, 0, "old"), "replace's first argument"),
                let new = try string(argument(args, keywords, 1, "new"), "replace's second argument")
            else { throw fail("replace needs two strings") }
            return .string(try replace(try show(v), old, new))
        case "list": return .list(try iterate(v))
        case "reverse":
            if case .string(let s) = v { return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed()))) }
            return .list(try iterate(v).reversed())
        case "items":
            guard case .dict(let d) = v else { return v == .undefined ? .list([]) : try callMethod(v, "items", [], []) }
            return .list(d.keys.map { .list([.string($0), d[$0]!]) })
        case "selectattr", "rejectattr":
            // `messages | selectattr("role", "equalto", "user")`: the items whose attribute passes
            // the test (or is truthy when no test is named).
            guard case .string(let attribute) = args.first else { throw fail("\(name) needs an attribute name") }
            var test: String?
            if args.count > 1 {
                guard case .string(let t) = args[1], TemplateParser.tests.contains(t) else {
                    throw TemplateError(.unsupported(construct: "\(name) with the test \(args[1].repr(limit: 200))"), "", line: line)
                }
                test = t
            }
            var kept: [TemplateValue] = []
            for item in try iterate(v) {
                let value = attributeValue(item, attribute)
                let passes = try test.map { t throws(TemplateError) in try applyTest(t, value, Array(args.dropFirst(2))) } ?? value.truthy
                if passes == (name == "selectattr") { kept.append(item) }
            }
            return .list(kept)
        case "map":
            // `map(attribute="role")`, or `map("upper")`: a filter applied to every item.
            let items = try iterate(v)
            if case .string(let attribute)? = argument([], keywords, 0, "attribute") {
                let fallback = argument([], keywords, 1, "default")
                return .list(
                    items.map { item in
                        let value = attributeValue(item, attribute)
                        return value == .undefined ? (fallback ?? .undefined) : value
                    })
            }
            guard case .string(let filter) = args.first, TemplateParser.filters.contains(filter), filter != "map" else {
                throw TemplateError(.unsupported(construct: "map with \(args.first?.repr(limit: 200) ?? "no filter")"), "", line: line)
            }
            var out: [TemplateValue] = []
            for item in items { out.append(try applyFilter(filter, item, Array(args.dropFirst()), [])) }
            return .list(out)
        default:
            throw TemplateError(.unsupported(construct: "the filter '\(name)'"), "", line: line)
        }
    }

    /// `item.a.b` as Jinja's attribute filters read a dotted name: dictionary keys, one level at a time.
    func attributeValue(_ item: TemplateValue, _ dotted: String) -> TemplateValue {
        var value = item
        for part in dotted.split(separator: ".", omittingEmptySubsequences: false) {
            switch value {
            case .dict(let d): value = d[String(part)] ?? .undefined
            case .namespace(let id): value = namespaces[id][String(part)] ?? .undefined
            case .list(let l):
                guard let i = Int(part), l.indices.contains(i) else { return .undefined }
                value = l[i]
            default: return .undefined
            }
        }
        return value
    }

    func applyTest(_ name: String, _ v: TemplateValue, _ args: [TemplateValue]) throws(TemplateError) -> Bool {
        switch name {
        case "defined": return v != .undefined
        case "undefined": return v == .undefined
        case "none": return v == .none
        case "string": if case .string = v { return true } else { return false }
        case "number": if case .int = v { return true } else if case .double = v { return true } else { return false }
        case "integer": if case .int = v { return true } else { return false }
        case "float": if case .double = v { return true } else { return false }
        case "boolean": if case .bool = v { return true } else { return false }
        case "true": return v == .bool(true)
        case "false": return v == .bool(false)
        case "mapping": if case .dict = v { return true } else { return false }
        case "sequence", "iterable":
            switch v {
            case .list, .string, .dict: return true
            default: return false
            }
        case "even", "odd", "divisibleby":
            guard let i = v.integer else { throw fail("'is \(name)' needs an integer, not a \(v.typeName)") }
            if name == "divisibleby" {
                guard let n = args.first?.integer, n != 0 else { throw fail("'is divisibleby' needs a non-zero integer") }
                return i % n == 0
            }
            return (i % 2 == 0) == (name == "even")
        case "equalto", "eq": return v.equals(args.first ?? .undefined)
        case "ne": return !v.equals(args.first ?? .undefined)
        case "lower": if case .string(let s) = v { return s == s.lowercased() } else { return false }
        case "upper": if case .string(let s) = v { return s == s.uppercased() } else { return false }
        default: throw TemplateError(.unsupported(construct: "the test '\(name)'"), "", line: line)
        }
    }

    /// How `json.dumps` lays the text out: its `ensure_ascii`, `indent`, `separators` and
    /// `sort_keys` as tojson passes them.
    struct JSONStyle {
        var asciiOnly = false
        /// nil: one line. Otherwise the text each level of nesting adds after a newline.
        var indent: String?
        var itemSeparator = ", "
        var keySeparator = ": "
        var sortKeys = false
    }

    func jsonStyle(_ args: [TemplateValue], _ keywords: [(String, TemplateValue)]) throws(TemplateError) -> JSONStyle {
        var style = JSONStyle()
        style.asciiOnly = argument(args, keywords, 0, "ensure_ascii")?.truthy ?? false
        switch argument(args, keywords, 1, "indent") {
        case nil, .none?: break
        case .int(let n)?:
            guard n <= 256 else { throw fail("tojson's indent of \(n) is more than a template needs (at most 256)") }
            style.indent = String(repeating: " ", count: max(0, n))
        case .string(let s)?: style.indent = s
        case let other?: throw fail("tojson's indent must be an integer or a string, not a \(other.typeName)")
        }
        // With an indent, Python drops the space after the item separator (the newline replaces it).
        if style.indent != nil { style.itemSeparator = "," }
        switch argument(args, keywords, 2, "separators") {
        case nil, .none?: break
        case .list(let pair)? where pair.count == 2:
            guard case .string(let item) = pair[0], case .string(let key) = pair[1] else {
                throw fail("tojson's separators must be two strings")
            }
            (style.itemSeparator, style.keySeparator) = (item, key)
        case _?: throw fail("tojson's separators must be two strings")
        }
        style.sortKeys = argument(args, keywords, 3, "sort_keys")?.truthy ?? false
        return style
    }

    /// `json.dumps(v, …)` as Python writes it, by default with `ensure_ascii=False` and the
    /// separators `", "` and `": "`.
    func json(_ v: TemplateValue, _ style: JSONStyle = JSONStyle(), level: Int = 0) throws(TemplateError) -> String {
        switch v {
        case .none: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d):
            if d.isNaN { return "NaN" }
            if d.isInfinite { return d > 0 ? "Infinity" : "-Infinity" }
            return TemplateValue.pythonFloat(d)
        case .string(let s): return Self.jsonString(s, asciiOnly: style.asciiOnly)
        case .list(let l):
            if l.isEmpty { return "[]" }
            var parts: [String] = []
            var bytes = 0
            for item in l {
                parts.append(try json(item, style, level: level + 1))
                bytes += parts[parts.count - 1].utf8.count + Self.jsonOverhead(style, level: level)
                try checkLength(bytes)
            }
            return "[" + Self.jsonJoin(parts, style, level: level) + "]"
        case .dict(let d):
            if d.keys.isEmpty { return "{}" }
            var parts: [String] = []
            var bytes = 0
            let keys = style.sortKeys ? d.keys.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) } : d.keys
            for k in keys {
                let value = try json(d[k]!, style, level: level + 1)
                parts.append(Self.jsonString(k, asciiOnly: style.asciiOnly) + style.keySeparator + value)
                bytes += parts[parts.count - 1].utf8.count + Self.jsonOverhead(style, level: level)
                try checkLength(bytes)
            }
            return "{" + Self.jsonJoin(parts, style, level: level) + "}"
        case .namespace: throw fail("a namespace cannot be written as JSON")
        case .function, .macro: throw fail("a \(v.typeName) cannot be written as JSON")
        case .undefined: throw fail("an undefined value cannot be written as JSON")
        }
    }

    /// What jsonJoin adds for each item beside the item itself: its separator and indentation.
    static func jsonOverhead(_ style: JSONStyle, level: Int) -> Int {
        style.itemSeparator.utf8.count + (style.indent.map { 1 + $0.utf8.count * (level + 1) } ?? 0)
    }

    static func jsonJoin(_ parts: [String], _ style: JSONStyle, level: Int) -> String {
        guard let indent = style.indent else { return parts.joined(separator: style.itemSeparator) }
        let inner = "\n" + String(repeating: indent, count: level + 1)
        return inner + parts.joined(separator: style.itemSeparator + inner) + "\n" + String(repeating: indent, count: level)
    }

    static func jsonString(_ s: String, asciiOnly: Bool = false) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if c.value < 0x20 || (asciiOnly && c.value > 0x7E) {
                    // Python writes what lies beyond the Basic Multilingual Plane as a surrogate pair.
                    for unit in String(c).utf16 { out += "\\u" + TemplateValue.hex(UInt32(unit), width: 4) }
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        return out + "\""
    }

    /// `datetime.now().strftime(format)` as transformers' `strftime_now` gives it: the C
    /// library's `strftime` on local time, with Python's own `%f` (microseconds) and, for a
    /// time without a zone, empty `%z` and `%Z`.
    static func strftimeNow(_ format: String, line: Int) throws(TemplateError) -> String {
        guard !format.unicodeScalars.contains("\u{0}") else {
            throw TemplateError(.evaluation, "strftime_now's format holds a NUL character", line: line)
        }
        var clock = timespec()
        clock_gettime(CLOCK_REALTIME, &clock)
        var seconds = clock.tv_sec
        var parts = tm()
        localtime_r(&seconds, &parts)
        var expanded = ""
        var scalars = format.unicodeScalars.makeIterator()
        while let c = scalars.next() {
            guard c == "%" else {
                expanded.unicodeScalars.append(c)
                continue
            }
            switch scalars.next() {
            case "f"?:
                let micro = String(clock.tv_nsec / 1000)
                expanded += String(repeating: "0", count: 6 - micro.count) + micro
            case "z"?, "Z"?: break
            case let next?: expanded += "%" + String(next)
            case nil: expanded += "%"
            }
        }
        // strftime gives 0 both for an empty result and for one that does not fit: grow and retry.
        var capacity = 256
        while capacity <= 1 << 20 {
            var buffer = [CChar](repeating: 0, count: capacity)
            let n = strftime(&buffer, capacity, expanded, &parts)
            if n > 0 || expanded.isEmpty { return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) }
            capacity *= 4
        }
        return ""
    }

    /// Python's `str.isspace` for one scalar.
    static func isPythonSpace(_ c: Unicode.Scalar) -> Bool { c.properties.isWhitespace || (0x1C...0x1F).contains(c.value) }

    static func strip(_ s: String, _ chars: String?, left: Bool, right: Bool) -> String {
        let set = chars.map { Set($0.unicodeScalars) }
        func strippable(_ c: Unicode.Scalar) -> Bool { set?.contains(c) ?? isPythonSpace(c) }
        var scalars = Array(s.unicodeScalars)[...]
        if left { while let c = scalars.first, strippable(c) { scalars.removeFirst() } }
        if right { while let c = scalars.last, strippable(c) { scalars.removeLast() } }
        return String(String.UnicodeScalarView(scalars))
    }

    static func split(_ s: String, _ separator: String?, line: Int) throws(TemplateError) -> [String] {
        let scalars = Array(s.unicodeScalars)
        guard let separator else {
            return scalars.split(whereSeparator: isPythonSpace).map { String(String.UnicodeScalarView($0)) }
        }
        let sep = Array(separator.unicodeScalars)
        guard !sep.isEmpty else { throw TemplateError(.evaluation, "split() with an empty separator", line: line) }
        var parts: [String] = []
        var start = 0
        var i = 0
        while i + sep.count <= scalars.count {
            if scalars.hasOccurrence(of: sep, at: i) {
                parts.append(String(String.UnicodeScalarView(scalars[start..<i])))
                i += sep.count
                start = i
            } else {
                i += 1
            }
        }
        parts.append(String(String.UnicodeScalarView(scalars[start...])))
        return parts
    }

    /// Python's `str.replace` on Unicode scalars (an empty `old` puts `new` before every scalar
    /// and at the end), refused once the result passes `maxOutput` bytes.
    func replace(_ s: String, _ old: String, _ new: String) throws(TemplateError) -> String {
        let scalars = Array(s.unicodeScalars)
        let o = Array(old.unicodeScalars)
        let newBytes = new.utf8.count
        if o.isEmpty {
            let (inserted, overflow) = (scalars.count + 1).multipliedReportingOverflow(by: newBytes)
            try checkLength(overflow ? .max : s.utf8.count + inserted)
            var out = new
            for scalar in scalars { out += String(scalar) + new }
            return out
        }
        var out = String.UnicodeScalarView()
        var bytes = 0
        var i = 0
        while i < scalars.count {
            if scalars.hasOccurrence(of: o, at: i) {
                out.append(contentsOf: new.unicodeScalars)
                bytes += newBytes
                try checkLength(bytes)
                i += o.count
            } else {
                out.append(scalars[i])
                bytes += UTF8.width(scalars[i])
                i += 1
            }
        }
        return String(out)
    }

    static func capitalize(_ s: String) -> String {
        guard let first = s.first else { return s }
        return first.uppercased() + s.dropFirst().lowercased()
    }

    static func title(_ s: String) -> String {
        var out = ""
        var previousCased = false
        for c in s {
            out += previousCased ? c.lowercased() : c.uppercased()
            previousCased = c.isLetter
        }
        return out
    }
}

extension String {
    var trimmingPythonSpace: String { TemplateRenderer.strip(self, nil, left: true, right: true) }
}

extension Array where Element == Unicode.Scalar {
    /// Whether `pattern` occurs at `start`: the code-point matching Python's string methods
    /// and `in` do (Swift's `String` matches whole grapheme clusters).
    func hasOccurrence(of pattern: [Unicode.Scalar], at start: Int) -> Bool {
        start + pattern.count <= count && self[start..<(start + pattern.count)].elementsEqual(pattern)
    }
}
