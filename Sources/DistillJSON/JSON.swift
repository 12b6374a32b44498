import CJansson
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Live jansson allocations (mallocs minus frees made through jansson).
/// Counted through `json_set_alloc_funcs`, so a test can show that thousands of
/// requests leave no `json_t` behind.
private let janssonLiveAllocations = Atomic<Int>(0)
/// Live `JSON` wrappers.
private let liveWrappers = Atomic<Int>(0)
/// Allocations jansson asked for and did not get. jansson itself does not always
/// say so (it can fail with an empty message, or call the failure a syntax error).
private let janssonFailedAllocations = Atomic<Int>(0)
/// Tests only: the thread whose jansson allocations fail, after how many more, and
/// how many it has refused (kept apart so that parses on other threads are unaffected).
private let failingThread = Atomic<UInt>(0)
private let allocationsBeforeFailure = Atomic<Int>(0)
private let injectedFailures = Atomic<Int>(0)

/// Failed jansson allocations as seen from this thread.
private func failedAllocations() -> Int {
    let injected = failingThread.load(ordering: .relaxed) == UInt(pthread_self()) ? injectedFailures.load(ordering: .relaxed) : 0
    return janssonFailedAllocations.load(ordering: .relaxed) + injected
}

/// Installs the counting allocator and seeds jansson's hash before any value exists.
/// Swift runs a global's initialiser once, thread-safely.
private let janssonSetUp: Void = {
    json_set_alloc_funcs(
        { size in
            if failingThread.load(ordering: .relaxed) == UInt(pthread_self()),
                allocationsBeforeFailure.subtract(1, ordering: .relaxed).newValue < 0
            {
                injectedFailures.add(1, ordering: .relaxed)
                return nil
            }
            guard let pointer = malloc(size) else {
                janssonFailedAllocations.add(1, ordering: .relaxed)
                return nil
            }
            janssonLiveAllocations.add(1, ordering: .relaxed)
            return pointer
        },
        { pointer in
            if pointer != nil { janssonLiveAllocations.subtract(1, ordering: .relaxed) }
            free(pointer)
        })
    json_object_seed(0)
}()

/// An owning handle on one jansson value.
///
/// Each `JSON` owns exactly one reference to its `json_t` and releases it in
/// `deinit`. Children read out of a container are retained, so they stay valid
/// after their parent is gone.
///
/// - Important: reading a value from several threads at once is safe (jansson's
///   reference counts are atomic). A value that is being mutated must not be
///   shared: build a message on one thread, then hand it over.
/// Unchecked: shared values are only read (jansson's counts are atomic); mutation happens before the hand-over.
public final class JSON: @unchecked Sendable {
    /// The owned `json_t *`.
    let raw: UnsafeMutablePointer<json_t>

    /// Takes over a new reference (as returned by jansson's constructors).
    init(owning raw: UnsafeMutablePointer<json_t>) {
        _ = janssonSetUp
        self.raw = raw
        liveWrappers.add(1, ordering: .relaxed)
    }

    /// Retains a borrowed reference (as returned by `json_object_get`).
    convenience init(borrowing raw: UnsafeMutablePointer<json_t>) {
        self.init(owning: cj_incref(raw)!)
    }

    deinit {
        cj_decref(raw)
        liveWrappers.subtract(1, ordering: .relaxed)
    }

    /// Counters for leak tests: live `JSON` wrappers and live jansson allocations.
    public static var liveCounts: (wrappers: Int, allocations: Int) {
        _ = janssonSetUp
        return (liveWrappers.load(ordering: .relaxed), janssonLiveAllocations.load(ordering: .relaxed))
    }

    public enum Kind: String, Sendable {
        case object, array, string, integer, real, bool, null
    }

    public var kind: Kind {
        switch raw.pointee.type {
        case JSON_OBJECT: return .object
        case JSON_ARRAY: return .array
        case JSON_STRING: return .string
        case JSON_INTEGER: return .integer
        case JSON_REAL: return .real
        case JSON_TRUE, JSON_FALSE: return .bool
        default: return .null
        }
    }

    /// A JSON-ish name of the kind, for error messages ("an object", "a number").
    public var kindDescription: String {
        switch kind {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .integer, .real: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }
}

// MARK: - Parsing and writing

/// Why a byte sequence could not be read as JSON, with jansson's position when the
/// text itself is at fault.
public struct JSONParseError: Error, CustomStringConvertible, Sendable {
    public enum Reason: Sendable, Equatable {
        /// Not JSON (or not UTF-8), or a NUL in a key, a duplicate key.
        case syntax
        /// A number too large for a 64-bit integer or a double.
        case numberTooBig
        /// Arrays and objects nested deeper than jansson's limit.
        case tooDeep
        /// jansson could not allocate memory for the parsed value: the text may be fine.
        case outOfMemory
    }
    public let reason: Reason
    public let message: String
    /// Line and column of the problem; -1 when it has no place in the text.
    public let line: Int
    public let column: Int
    public let position: Int
    public var description: String {
        // jansson keeps line and column in C ints: past 2^31 bytes they are meaningless.
        line > 0 && column >= 0 ? "\(message) at line \(line), column \(column)" : message
    }
}

/// jansson's limit on nesting (JSON_PARSER_MAX_DEPTH).
let janssonMaxDepth = 2048

extension JSONParseError {
    init(jansson error: json_error_t, byteCount: Int) {
        let text = withUnsafeBytes(of: error.text) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        let (line, column, position) = (Int(error.line), Int(error.column), Int(error.position))
        var copy = error
        switch cj_error_code(&copy) {
        case cj_error_out_of_memory():
            self.init(
                reason: .outOfMemory, message: "out of memory while parsing \(byteCount) bytes of JSON", line: -1, column: -1, position: -1)
        case cj_error_stack_overflow():
            self.init(
                reason: .tooDeep, message: "arrays and objects nested deeper than \(janssonMaxDepth) levels", line: line, column: column,
                position: position)
        case cj_error_numeric_overflow():
            self.init(reason: .numberTooBig, message: text, line: line, column: column, position: position)
        default:
            // An empty message means jansson stopped without saying why: its allocation
            // failures are the only such path.
            if text.isEmpty {
                self.init(
                    reason: .outOfMemory, message: "out of memory while parsing \(byteCount) bytes of JSON", line: -1, column: -1,
                    position: -1
                )
            } else {
                self.init(reason: .syntax, message: text, line: line, column: column, position: position)
            }
        }
    }
}

extension JSON {
    /// Parses one complete JSON text (any value at top level, duplicate keys rejected).
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws -> JSON {
        _ = janssonSetUp
        var error = json_error_t()
        let base = bytes.baseAddress?.assumingMemoryBound(to: CChar.self)
        let failuresBefore = failedAllocations()
        let value = json_loadb(base, bytes.count, cj_decode_flags(), &error)
        // jansson ignores some failed allocations while lexing, so a value built after
        // one cannot be trusted either.
        if failedAllocations() != failuresBefore {
            if let value { cj_decref(value) }
            throw JSONParseError(
                reason: .outOfMemory,
                message: "out of memory while parsing \(bytes.count) bytes of JSON: the parsed value needs several times the text's size",
                line: -1, column: -1, position: -1)
        }
        guard let value else { throw JSONParseError(jansson: error, byteCount: bytes.count) }
        return JSON(owning: value)
    }

    /// Tests only: makes this thread's jansson allocations fail after `count` more
    /// succeed, for the duration of `body`.
    static func failingAllocations<T>(after count: Int, _ body: () throws -> T) rethrows -> T {
        _ = janssonSetUp
        allocationsBeforeFailure.store(count, ordering: .relaxed)
        failingThread.store(UInt(pthread_self()), ordering: .relaxed)
        defer { failingThread.store(0, ordering: .relaxed) }
        return try body()
    }

    public static func parse(_ bytes: [UInt8]) throws -> JSON {
        try bytes.withUnsafeBytes { try parse($0) }
    }

    public static func parse(_ text: String) throws -> JSON {
        var copy = text
        return try copy.withUTF8 { try parse(UnsafeRawBufferPointer($0)) }
    }

    /// Compact UTF-8 encoding; `sortKeys` gives a canonical form for tests and files.
    public func serialized(sortKeys: Bool = false, pretty: Bool = false) -> [UInt8] {
        final class Sink { var bytes: [UInt8] = [] }
        let sink = Sink()
        sink.bytes.reserveCapacity(256)
        let flags = pretty ? cj_encode_flags_pretty() : (sortKeys ? cj_encode_flags_sorted() : cj_encode_flags())
        let context = Unmanaged.passUnretained(sink).toOpaque()
        json_dump_callback(
            raw,
            { buffer, size, data in
                let sink = Unmanaged<Sink>.fromOpaque(data!).takeUnretainedValue()
                buffer!.withMemoryRebound(to: UInt8.self, capacity: size) {
                    sink.bytes.append(contentsOf: UnsafeBufferPointer(start: $0, count: size))
                }
                return 0
            }, context, flags)
        return sink.bytes
    }

    public func serializedString(sortKeys: Bool = false, pretty: Bool = false) -> String {
        String(decoding: serialized(sortKeys: sortKeys, pretty: pretty), as: UTF8.self)
    }
}

// MARK: - Construction

extension JSON {
    public static var null: JSON { JSON(owning: json_null()!) }

    public convenience init(_ string: String) {
        var copy = string
        let raw = copy.withUTF8 { buffer in
            buffer.withMemoryRebound(to: CChar.self) { json_stringn_nocheck($0.baseAddress, $0.count) }
        }
        self.init(owning: raw!)
    }

    public convenience init(_ value: Int) { self.init(owning: json_integer(json_int_t(value))!) }
    public convenience init(_ value: Int64) { self.init(owning: json_integer(json_int_t(value))!) }
    public convenience init(_ value: Bool) { self.init(owning: value ? json_true()! : json_false()!) }

    /// A real number. JSON has no non-finite numbers: +∞ and −∞ are written as the
    /// strings "Infinity" and "-Infinity", NaN as "NaN" (Protocol/README.md).
    public convenience init(_ value: Double) {
        if value.isFinite {
            self.init(owning: json_real(value)!)
        } else if value.isNaN {
            self.init("NaN")
        } else {
            self.init(value > 0 ? "Infinity" : "-Infinity")
        }
    }

    public convenience init(_ value: Float) { self.init(Double(value)) }

    public static func object() -> JSON { JSON(owning: json_object()!) }
    public static func array() -> JSON { JSON(owning: json_array()!) }

    public static func object(_ pairs: [(String, JSON)]) -> JSON {
        let o = object()
        for (k, v) in pairs { o[k] = v }
        return o
    }

    /// An object of the members whose value is present, in the order given: for replies and
    /// files that write an optional member only when it is set.
    public static func object(present pairs: [(String, JSON?)]) -> JSON {
        let o = object()
        for case (let k, let v?) in pairs { o[k] = v }
        return o
    }

    public static func array(_ items: [JSON]) -> JSON {
        let a = array()
        for item in items { a.append(item) }
        return a
    }

    public static func array(_ values: [Double]) -> JSON { array(values.map { JSON($0) }) }
    public static func array(_ values: [Int]) -> JSON { array(values.map { JSON($0) }) }
    public static func array(_ values: [String]) -> JSON { array(values.map { JSON($0) }) }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public convenience init(stringLiteral value: String) { self.init(value) }
    public convenience init(integerLiteral value: Int) { self.init(value) }
    public convenience init(floatLiteral value: Double) { self.init(value) }
    public convenience init(booleanLiteral value: Bool) { self.init(value) }
    public convenience init(arrayLiteral elements: JSON...) {
        self.init(owning: json_array()!)
        for e in elements { append(e) }
    }
    public convenience init(dictionaryLiteral elements: (String, JSON)...) {
        self.init(owning: json_object()!)
        for (k, v) in elements { self[k] = v }
    }
}

// MARK: - Reading and mutation

extension JSON {
    public var isNull: Bool { cj_is_null(raw) != 0 }
    public var isObject: Bool { cj_is_object(raw) != 0 }
    public var isArray: Bool { cj_is_array(raw) != 0 }
    public var isNumber: Bool { kind == .integer || kind == .real }

    public var stringValue: String? {
        guard cj_is_string(raw) != 0, let p = json_string_value(raw) else { return nil }
        let n = json_string_length(raw)
        return p.withMemoryRebound(to: UInt8.self, capacity: n) {
            String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self)
        }
    }

    /// The integer value, only for JSON integers (1.0 is not an integer).
    public var intValue: Int? {
        guard cj_is_integer(raw) != 0 else { return nil }
        return Int(json_integer_value(raw))
    }

    /// Any JSON number, and the strings "Infinity", "-Infinity" and "NaN" that stand for
    /// non-finite values in this protocol.
    public var doubleValue: Double? {
        if isNumber { return json_number_value(raw) }
        switch stringValue {
        case "Infinity": return .infinity
        case "-Infinity": return -.infinity
        case "NaN": return .nan
        default: return nil
        }
    }

    public var boolValue: Bool? {
        if cj_is_true(raw) != 0 { return true }
        if cj_is_false(raw) != 0 { return false }
        return nil
    }

    /// Elements of an array or members of an object.
    public var count: Int {
        if isArray { return json_array_size(raw) }
        if isObject { return json_object_size(raw) }
        return 0
    }

    public subscript(key: String) -> JSON? {
        get {
            guard isObject, let child = json_object_get(raw, key) else { return nil }
            return JSON(borrowing: child)
        }
        set {
            precondition(isObject, "setting a key on \(kindDescription)")
            if let value = newValue {
                json_object_set(raw, key, value.raw)
            } else {
                json_object_del(raw, key)
            }
        }
    }

    public subscript(index: Int) -> JSON? {
        guard isArray, index >= 0, let child = json_array_get(raw, index) else { return nil }
        return JSON(borrowing: child)
    }

    public func append(_ value: JSON) {
        precondition(isArray, "appending to \(kindDescription)")
        json_array_append(raw, value.raw)
    }

    public var arrayValue: [JSON]? {
        guard isArray else { return nil }
        return (0..<count).map { JSON(borrowing: json_array_get(raw, $0)!) }
    }

    /// Object members in jansson's insertion order.
    public var members: [(key: String, value: JSON)]? {
        guard isObject else { return nil }
        var out: [(String, JSON)] = []
        var iter = json_object_iter(raw)
        while let it = iter {
            let n = json_object_iter_key_len(it)
            let key = json_object_iter_key(it)!.withMemoryRebound(to: UInt8.self, capacity: n) {
                String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self)
            }
            out.append((key, JSON(borrowing: json_object_iter_value(it)!)))
            iter = json_object_iter_next(raw, it)
        }
        return out
    }

    public var keys: [String] { members?.map(\.key) ?? [] }
}

extension JSON {
    /// Lends the UTF-8 bytes of a string value without copying them (nil for non-strings).
    public func withStringBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T? {
        guard cj_is_string(raw) != 0, let p = json_string_value(raw) else { return nil }
        return try body(UnsafeRawBufferPointer(start: p, count: json_string_length(raw)))
    }
}
