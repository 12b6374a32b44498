import DistillJSON

/// A label: datasets hold strings or integers. (CSV fields that are decimal
/// integers read as `.integer`.)
public enum DatasetLabel: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case integer(Int)

    public var description: String {
        switch self {
        case .string(let s): return s
        case .integer(let i): return String(i)
        }
    }

    public var json: JSON {
        switch self {
        case .string(let s): return JSON(s)
        case .integer(let i): return JSON(i)
        }
    }
}

/// One paired example: the teacher sees `full`, the student `simplified`.
public struct Example: Sendable, Equatable {
    public let id: String
    public let full: String
    public let simplified: String
    public let target: String?
    public let label: DatasetLabel?
    /// 1-based line in the file where the example starts.
    public let line: Int
    /// False when the record had no id and `id` was made from its line or position.
    public let hasId: Bool

    public init(
        id: String, full: String, simplified: String, target: String? = nil, label: DatasetLabel? = nil, line: Int,
        hasId: Bool = true
    ) {
        self.hasId = hasId
        self.id = id
        self.full = full
        self.simplified = simplified
        self.target = target
        self.label = label
        self.line = line
    }
}

/// One entry of an input list, with its 1-based line.
public struct InputRecord: Sendable, Equatable {
    public let text: String
    public let line: Int

    public init(text: String, line: Int) {
        self.text = text
        self.line = line
    }
}

/// A parsed dataset before it becomes a registry entry.
public struct LoadedDataset: Sendable {
    public var kind: DatasetKind
    public var format: DatasetFormat
    public var examples: [Example]
    public var inputs: [InputRecord]
    /// True when the file had no ids and they were made from line numbers.
    public var idsSynthesized: Bool
    public var warnings: [String]
    /// Approximate resident size of the parsed text.
    public var bytes: Int
}

/// Loads paired datasets (JSON Lines, CSV) and input lists (text, JSON Lines, JSON list).
///
/// Paired fields: `id`, `full`, `simplified` (required), `target` (optional string),
/// `label` (optional string or integer); the `fields` option renames them. A
/// missing id becomes the example's 1-based start line (as a string) with one
/// warning; ids must be unique. Input lists use the field `input` in JSON Lines;
/// in text files blank lines are skipped.
public enum DatasetLoader {
    public static func detectFormat(path: String, kind: DatasetKind) throws -> DatasetFormat {
        let lower = path.lowercased()
        if lower.hasSuffix(".csv") || lower.hasSuffix(".tsv") { return .csv }
        if lower.hasSuffix(".jsonl") || lower.hasSuffix(".ndjson") { return .jsonl }
        let map = try MappedFile(path: path)
        switch map.withBytes({ firstNonSpace(droppingBOM($0)) }) {
        case UInt8(ascii: "["): return .json
        case UInt8(ascii: "{"): return .jsonl
        default:
            if lower.hasSuffix(".txt") || kind == .inputs { return .txt }
            throw fileError(.unknownFormat, path, "cannot tell the dataset format; give format (jsonl, csv, txt, json)")
        }
    }

    /// Reads a dataset file. With a memory `budget`, a JSON Lines line longer than
    /// `TeacherLoader.maxLineBytes(budget:)` is refused, naming the line.
    public static func load(_ source: DatasetSource, budget: Int? = nil) throws -> LoadedDataset {
        try source.checkPaths()
        return try FileGuard.run {
            let format = try source.format ?? detectFormat(path: source.path, kind: source.kind)
            let map = try MappedFile(path: source.path)
            return try map.withBytes { raw in try load(droppingBOM(raw), source, format, budget: budget) }
        }
    }

    /// Parses a dataset already in memory (an editor's buffer), as `load` parses a file.
    ///
    /// Text (CSV, plain text) must be valid UTF-8, as JSON requires: the first
    /// invalid byte is refused with `.invalidUTF8` naming its line, column (byte
    /// within the line, 1-based) and byte offset in the file.
    public static func load(
        _ bytes: UnsafeRawBufferPointer, _ source: DatasetSource, _ format: DatasetFormat, budget: Int? = nil
    ) throws -> LoadedDataset {
        if format == .csv || format == .txt { try checkUTF8(bytes, path: source.path) }
        if format == .jsonl, let limit = TeacherLoader.maxLineBytes(budget: budget) {
            try forEachLine(bytes) { line, text in
                try TeacherLoader.checkLineLength(text, limit: limit, path: source.path, line: line, budget: budget)
            }
        }
        switch (source.kind, format) {
        case (.paired, .jsonl): return try pairedJSONL(bytes, source)
        case (.paired, .csv): return try pairedCSV(bytes, source)
        case (.inputs, .txt): return inputsText(bytes, source)
        case (.inputs, .jsonl): return try inputsJSONL(bytes, source)
        case (.inputs, .json): return try inputsJSONList(bytes, source)
        case (.inputs, .csv): return try inputsCSV(bytes, source)
        case (.paired, _):
            throw fileError(.unknownFormat, source.path, "paired datasets are JSON Lines or CSV, not \(format.rawValue)")
        }
    }

    // MARK: - Paired

    /// Collects examples, synthesising missing ids and refusing duplicates.
    struct PairedBuilder {
        let path: String
        var examples: [Example] = []
        var seen: [String: Int] = [:]
        var missing = 0
        var present = 0
        var warnings: [String] = []
        var bytes = 0
        /// Editor mode: keep going past bad lines and duplicate ids, collecting them.
        var lenient = false
        var problems: [StoreError] = []

        mutating func add(id: String?, full: String, simplified: String, target: String?, label: DatasetLabel?, line: Int) throws {
            let key: String
            if let id {
                key = id
                present += 1
            } else {
                key = String(line)
                if missing == 0 {
                    warnings.append("\(path): examples without an id (first on line \(line)) are named by their line number")
                }
                missing += 1
            }
            if let first = seen[key] {
                let error = fileError(
                    .duplicateId, path, line: line, numbers: ["firstLine": first], "id '\(key)' already appeared on line \(first)")
                guard lenient else { throw error }
                problems.append(error)
            }
            seen[key] = line
            bytes += full.utf8.count + simplified.utf8.count + (target?.utf8.count ?? 0) + key.utf8.count + 64
            examples.append(
                Example(id: key, full: full, simplified: simplified, target: target, label: label, line: line, hasId: id != nil))
        }

        func finish(_ format: DatasetFormat) -> LoadedDataset {
            LoadedDataset(
                kind: .paired, format: format, examples: examples, inputs: [], idsSynthesized: present == 0,
                warnings: warnings, bytes: bytes)
        }
    }

    /// Parses an editor's buffer of a paired JSON Lines dataset without stopping at
    /// the first problem: bad lines and duplicate ids come back as `problems`, and
    /// every example that could be read (duplicates included) as `examples`.
    public static func parseLeniently(_ bytes: UnsafeRawBufferPointer, _ source: DatasetSource) -> (
        examples: [Example], problems: [StoreError]
    ) {
        var b = PairedBuilder(path: source.path)
        b.lenient = true
        _ = try? pairedJSONL(bytes, source, builder: &b)
        return (b.examples, b.problems)
    }

    static func pairedJSONL(_ bytes: UnsafeRawBufferPointer, _ source: DatasetSource) throws -> LoadedDataset {
        var b = PairedBuilder(path: source.path)
        return try pairedJSONL(bytes, source, builder: &b)
    }

    static func pairedJSONL(_ bytes: UnsafeRawBufferPointer, _ source: DatasetSource, builder b: inout PairedBuilder) throws
        -> LoadedDataset
    {
        let path = source.path
        let o = source.options
        try forEachLine(bytes) { line, text in
            if isBlank(text) { return }
            do {
                try pairedLine(text, line: line, path: path, options: o, into: &b)
            } catch let error as StoreError where b.lenient {
                b.problems.append(error)
            }
        }
        return b.finish(.jsonl)
    }

    private static func pairedLine(
        _ text: UnsafeRawBufferPointer, line: Int, path: String, options o: DatasetOptions, into b: inout PairedBuilder
    ) throws {
        let obj = try parseObjectLine(text, path: path, line: line)
        func string(_ canonical: String, required: Bool) throws -> String? {
            let name = o.field(canonical)
            guard let v = obj[name], !v.isNull else {
                if required { throw fileError(.badLine, path, line: line, "the line lacks the field '\(name)'") }
                return nil
            }
            guard let s = v.stringValue else {
                throw fileError(.badLine, path, line: line, "'\(name)' is \(v.kindDescription), not a string")
            }
            return s
        }
        var id: String?
        if let v = obj[o.field("id")], !v.isNull {
            if let s = v.stringValue {
                id = s
            } else if let i = v.intValue {
                id = String(i)
            } else {
                throw fileError(.badLine, path, line: line, "'\(o.field("id"))' is \(v.kindDescription), not a string or integer")
            }
        }
        var label: DatasetLabel?
        if let v = obj[o.field("label")], !v.isNull {
            if let s = v.stringValue {
                label = .string(s)
            } else if let i = v.intValue {
                label = .integer(i)
            } else {
                throw fileError(.badLine, path, line: line, "'\(o.field("label"))' is \(v.kindDescription), not a string or integer")
            }
        }
        try b.add(
            id: id, full: string("full", required: true)!, simplified: string("simplified", required: true)!,
            target: string("target", required: false), label: label, line: line)
    }

    static func parseObjectLine(_ text: UnsafeRawBufferPointer, path: String, line: Int) throws -> JSON {
        let obj: JSON
        do { obj = try JSON.parse(text) } catch let e as JSONParseError {
            throw fileError(.badLine, path, line: line, numbers: ["column": e.column], "not JSON: \(e.message) (column \(e.column))")
        }
        guard obj.isObject else {
            throw fileError(.badLine, path, line: line, "the line holds \(obj.kindDescription), not an object")
        }
        return obj
    }

    static func delimiter(_ source: DatasetSource) -> UInt8 {
        source.options.delimiter ?? (source.path.lowercased().hasSuffix(".tsv") ? 0x09 : 0x2C)
    }

    static func pairedCSV(_ bytes: UnsafeRawBufferPointer, _ source: DatasetSource) throws -> LoadedDataset {
        let path = source.path
        let o = source.options
        let records = try CSV.parse(bytes, delimiter: delimiter(source), path: path)
        guard let header = records.first else {
            throw fileError(.badLine, path, line: 1, "the file is empty; a CSV dataset needs a header row")
        }
        func column(_ canonical: String, required: Bool) throws -> Int? {
            let name = o.field(canonical)
            if let i = header.fields.firstIndex(of: name) { return i }
            if required {
                throw fileError(
                    .badLine, path, line: header.line,
                    "the header row lacks the column '\(name)' (it has \(header.fields.map { "'\($0)'" }.joined(separator: ", ")))")
            }
            return nil
        }
        let full = try column("full", required: true)!
        let simplified = try column("simplified", required: true)!
        let idCol = try column("id", required: false)
        let targetCol = try column("target", required: false)
        let labelCol = try column("label", required: false)
        var b = PairedBuilder(path: path)
        for r in records.dropFirst() {
            guard r.fields.count == header.fields.count else {
                throw fileError(
                    .badLine, path, line: r.line, numbers: ["expected": header.fields.count, "actual": r.fields.count],
                    "the record has \(r.fields.count) fields where the header has \(header.fields.count)")
            }
            func opt(_ c: Int?) -> String? {
                guard let c, !r.fields[c].isEmpty else { return nil }
                return r.fields[c]
            }
            let label = opt(labelCol).map { s in Int(s).map(DatasetLabel.integer) ?? .string(s) }
            try b.add(
                id: opt(idCol), full: r.fields[full], simplified: r.fields[simplified], target: opt(targetCol), label: label,
                line: r.line)
        }
        return b.finish(.csv)
    }

    // MARK: - Inputs

    static func inputsText(_ bytes: UnsafeRawBufferPointer, _ source: DatasetSource) -> LoadedDataset {
        var inputs: [InputRecord] = []
        var size = 0
        forEachLine(bytes) { line, text in
            if isBlank(text) { return }
            let s = String(decoding: text, as: UTF8.self)
            size += s.utf8.count + 32
            inputs.append(InputRecord(text: s, line: line))
        }
        return LoadedDataset(kind: .inputs, format: .txt, examples: [], inputs: inputs, idsSynthesized: true, warnings: [], bytes: size)
    }

    static func inputsJSONL(_ bytes: UnsafeRawBufferPointer, _ source: DatasetSource) throws -> LoadedDataset {
        let path = source.path
        let name = source.options.field("input")
        var inputs: [InputRecord] = []
        var size = 0
        try forEachLine(bytes) { line, text in
            if isBlank(text) { return }
            let obj = try parseObjectLine(text, path: path, line: line)
            guard let v = obj[name] else { throw fileError(.badLine, path, line: line, "the line lacks the field '\(name)'") }
            guard let s = v.stringValue else {
                throw fileError(.badLine, path, line: line, "'\(name)' is \(v.kindDescription), not a string")
            }
            size += s.utf8.count + 32
            inputs.append(InputRecord(text: s, line: line))
        }
        return LoadedDataset(kind: .inputs, format: .jsonl, examples: [], inputs: inputs, idsSynthesized: true, warnings: [], bytes: size)
    }

    static func inputsJSONList(_ bytes: UnsafeRawBufferPointer, _ source: DatasetSource) throws -> LoadedDataset {
        let path = source.path
        let json: JSON
        do { json = try JSON.parse(bytes) } catch let e as JSONParseError {
            throw fileError(.badLine, path, line: e.line, "not JSON: \(e.message) (column \(e.column))")
        }
        guard let items = json.arrayValue else {
            throw fileError(.badLine, path, line: 1, "the file holds \(json.kindDescription), not a list of strings")
        }
        let lines = topLevelElementLines(bytes)
        var inputs: [InputRecord] = []
        var size = 0
        for (i, item) in items.enumerated() {
            let line = i < lines.count ? lines[i] : 1
            guard let s = item.stringValue else {
                throw fileError(.badLine, path, line: line, "element \(i) is \(item.kindDescription), not a string")
            }
            size += s.utf8.count + 32
            inputs.append(InputRecord(text: s, line: line))
        }
        return LoadedDataset(kind: .inputs, format: .json, examples: [], inputs: inputs, idsSynthesized: true, warnings: [], bytes: size)
    }

    static func inputsCSV(_ bytes: UnsafeRawBufferPointer, _ source: DatasetSource) throws -> LoadedDataset {
        let path = source.path
        let records = try CSV.parse(bytes, delimiter: delimiter(source), path: path)
        guard let header = records.first else { throw fileError(.badLine, path, line: 1, "the file is empty") }
        let name = source.options.field("input")
        guard let col = header.fields.firstIndex(of: name) else {
            throw fileError(.badLine, path, line: header.line, "the header row lacks the column '\(name)'")
        }
        var inputs: [InputRecord] = []
        var size = 0
        for r in records.dropFirst() {
            guard r.fields.count == header.fields.count else {
                throw fileError(
                    .badLine, path, line: r.line, "the record has \(r.fields.count) fields where the header has \(header.fields.count)")
            }
            size += r.fields[col].utf8.count + 32
            inputs.append(InputRecord(text: r.fields[col], line: r.line))
        }
        return LoadedDataset(kind: .inputs, format: .csv, examples: [], inputs: inputs, idsSynthesized: true, warnings: [], bytes: size)
    }
}

/// An RFC 4180 reader: fields separated by the delimiter, records by LF or CRLF;
/// a field that starts with a double quote is quoted, may hold delimiters and
/// newlines, and spells a quote as two quotes. A quote inside an unquoted field,
/// anything but a delimiter or newline after a closing quote, or a quote left open
/// at the end of the file is a `.csvQuoting` error naming the line. Empty lines
/// are skipped.
public enum CSV {
    public struct Record: Sendable, Equatable {
        /// 1-based line where the record starts.
        public let line: Int
        public let fields: [String]
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer, delimiter: UInt8 = 0x2C, path: String) throws -> [Record] {
        var records: [Record] = []
        var fields: [String] = []
        var field: [UInt8] = []
        var line = 1
        var recordLine = 1
        var i = 0
        let n = bytes.count
        let quote: UInt8 = 0x22
        var fieldStarted = false  // whether the current record has any content

        func endRecord() {
            if fieldStarted || !fields.isEmpty {
                fields.append(String(decoding: field, as: UTF8.self))
                records.append(Record(line: recordLine, fields: fields))
            }
            fields = []
            field = []
            fieldStarted = false
        }

        while i < n {
            let c = bytes[i]
            if c == quote && field.isEmpty {
                // Quoted field.
                let openLine = line
                fieldStarted = true
                i += 1
                var closed = false
                while i < n {
                    let d = bytes[i]
                    if d == quote {
                        if i + 1 < n, bytes[i + 1] == quote {
                            field.append(quote)
                            i += 2
                            continue
                        }
                        closed = true
                        i += 1
                        break
                    }
                    if d == 0x0A { line += 1 }
                    field.append(d)
                    i += 1
                }
                guard closed else {
                    throw fileError(
                        .csvQuoting, path, line: openLine, "the quoted field that opens on line \(openLine) is never closed")
                }
                if i < n {
                    let d = bytes[i]
                    let atCRLF = d == 0x0D && i + 1 < n && bytes[i + 1] == 0x0A
                    guard d == delimiter || d == 0x0A || atCRLF else {
                        throw fileError(
                            .csvQuoting, path, line: line,
                            "unexpected '\(String(UnicodeScalar(d)))' after a closing quote (a quote inside a quoted field is written as two quotes)"
                        )
                    }
                }
                continue
            }
            switch c {
            case delimiter:
                fields.append(String(decoding: field, as: UTF8.self))
                field = []
                fieldStarted = true
                i += 1
            case 0x0A:
                if field.last == 0x0D { field.removeLast() }
                endRecord()
                line += 1
                recordLine = line
                i += 1
            case 0x0D where i + 1 < n && bytes[i + 1] == 0x0A:
                endRecord()
                line += 1
                i += 2
                recordLine = line
            case quote:
                throw fileError(
                    .csvQuoting, path, line: line,
                    "a quote inside an unquoted field (field \(fields.count + 1)); quote the whole field and double the quote")
            default:
                field.append(c)
                fieldStarted = true
                i += 1
            }
        }
        endRecord()
        return records
    }

}
