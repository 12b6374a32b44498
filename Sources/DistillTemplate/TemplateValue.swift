/// A value a chat template reads or computes, with Python's meanings (the templates are written
/// for Jinja running in Python): truthiness, equality, `str()` and `repr()` as Python has them,
/// so that what distilld renders is what transformers renders.
public indirect enum TemplateValue: Sendable, Equatable {
    /// A name nobody set, or a key a dictionary lacks: falsy, and renders as nothing.
    case undefined
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([TemplateValue])
    /// A dictionary with string keys, in insertion order (as Python keeps them).
    case dict(TemplateDictionary)
    /// A `namespace()` object: a handle on storage the renderer owns, so that a `set` inside a
    /// loop can reach outside it (what namespaces exist for).
    case namespace(Int)
    /// A function the environment provides (`range`, `namespace`, `strftime_now`, …): what a
    /// template sees when it names one without calling it, so `strftime_now is defined` holds
    /// as it does in transformers.
    case function(String)
    /// A macro the template defined: a handle on the renderer's list of them.
    case macro(Int)

    public init(_ s: String) { self = .string(s) }

    /// Python's truth value (an undefined value is false, as Jinja's `Undefined` is).
    var truthy: Bool {
        switch self {
        case .undefined, .none: false
        case .bool(let b): b
        case .int(let i): i != 0
        case .double(let d): d != 0
        case .string(let s): !s.isEmpty
        case .list(let l): !l.isEmpty
        case .dict(let d): !d.keys.isEmpty
        case .namespace, .function, .macro: true
        }
    }

    /// The number a bool or number stands for in arithmetic (Python's `True + 1 == 2`).
    var number: Double? {
        switch self {
        case .bool(let b): b ? 1 : 0
        case .int(let i): Double(i)
        case .double(let d): d
        default: nil
        }
    }

    var integer: Int? {
        switch self {
        case .bool(let b): b ? 1 : 0
        case .int(let i): i
        default: nil
        }
    }

    /// Python's `==`: numbers compare by value across int, float and bool, strings by code
    /// point (Swift's `==` would call "é" and "e\u{301}" equal; Python does not).
    func equals(_ other: TemplateValue) -> Bool {
        if let a = number, let b = other.number { return a == b }
        switch (self, other) {
        case (.string(let a), .string(let b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case (.list(let a), .list(let b)): return a.count == b.count && zip(a, b).allSatisfy { $0.equals($1) }
        case (.dict(let a), .dict(let b)):
            return a.keys.count == b.keys.count && a.keys.allSatisfy { k in b[k].map { a[k]!.equals($0) } ?? false }
        default: return self == other
        }
    }

    /// Python's `repr()` cut to about `limit` bytes with "…", for messages that quote a value.
    func repr(limit: Int) -> String {
        var out = ""
        return appendRepr(to: &out, limit: limit) ? out : out + "…"
    }

    /// Appends Python's `repr()` (which `str()` of a list or dictionary uses for its items) to
    /// `out`. Stops and answers false as soon as `out` passes `limit` bytes, so a list of a
    /// million references to one long string is refused before it is all written out.
    func appendRepr(to out: inout String, limit: Int) -> Bool {
        switch self {
        case .undefined: break
        case .none: out += "None"
        case .bool(let b): out += b ? "True" : "False"
        case .int(let i): out += String(i)
        case .double(let d): out += Self.pythonFloat(d)
        case .string(let s): out += Self.pythonRepr(s)
        case .list(let l):
            out += "["
            for (i, item) in l.enumerated() {
                if i > 0 { out += ", " }
                guard item.appendRepr(to: &out, limit: limit) else { return false }
            }
            out += "]"
        case .dict(let d):
            out += "{"
            for (i, key) in d.keys.enumerated() {
                if i > 0 { out += ", " }
                out += Self.pythonRepr(key) + ": "
                guard d[key]!.appendRepr(to: &out, limit: limit) else { return false }
            }
            out += "}"
        case .namespace: out += "<Namespace>"
        case .function(let name): out += "<function \(name)>"
        case .macro: out += "<Macro>"
        }
        return out.utf8.count <= limit
    }

    static func pythonFloat(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d > 0 ? "inf" : "-inf" }
        return "\(d)"
    }

    /// Python's quoting of a string: single quotes unless the text holds one and no double quote.
    static func pythonRepr(_ s: String) -> String {
        let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String(quote)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if Character(scalar) == quote {
                    out += "\\" + String(quote)
                } else if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\x" + hex(scalar.value, width: 2)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + String(quote)
    }

    static func hex(_ v: UInt32, width: Int) -> String {
        let digits = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// The type's name as Python would give it, for messages.
    var typeName: String {
        switch self {
        case .undefined: "undefined"
        case .none: "none"
        case .bool: "bool"
        case .int: "int"
        case .double: "float"
        case .string: "string"
        case .list: "list"
        case .dict: "dict"
        case .namespace: "namespace"
        case .function: "function"
        case .macro: "macro"
        }
    }
}

/// A dictionary with string keys that remembers insertion order.
public struct TemplateDictionary: Sendable, Equatable {
    public private(set) var keys: [String] = []
    private var values: [String: TemplateValue] = [:]

    public init() {}

    public init(_ pairs: [(String, TemplateValue)]) {
        for (k, v) in pairs { self[k] = v }
    }

    public subscript(key: String) -> TemplateValue? {
        get { values[key] }
        set {
            if values[key] == nil, newValue != nil { keys.append(key) }
            if newValue == nil, values[key] != nil { keys.removeAll { $0 == key } }
            values[key] = newValue
        }
    }
}
