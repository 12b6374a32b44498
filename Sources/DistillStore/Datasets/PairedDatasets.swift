import DistillJSON

/// Paired datasets: JSON Lines (one object per line) and CSV with a header row.
enum PairedDatasets {
    /// Collects examples, synthesising missing ids and refusing duplicates.
    struct Builder {
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

        init(path: String) { self.path = path }

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
            bytes += full.utf8.count + simplified.utf8.count + (target?.utf8.count ?? 0) + key.utf8.count + Example.overheadBytes
            examples.append(
                Example(id: key, full: full, simplified: simplified, target: target, label: label, line: line, hasId: id != nil))
        }

        func finish(_ format: DatasetFormat) -> LoadedDataset {
            LoadedDataset(
                kind: .paired, format: format, examples: examples, inputs: [], idsSynthesized: present == 0,
                warnings: warnings, bytes: bytes)
        }
    }

    static func jsonLines(_ bytes: UnsafeRawBufferPointer, _ source: DatasetSource) throws -> LoadedDataset {
        var b = Builder(path: source.path)
        return try jsonLines(bytes, source, builder: &b)
    }

    static func jsonLines(_ bytes: UnsafeRawBufferPointer, _ source: DatasetSource, builder b: inout Builder) throws
        -> LoadedDataset
    {
        try forEachLine(bytes) { line, text in
            if isBlank(text) { return }
            do {
                try jsonLine(text, line: line, path: source.path, options: source.options, into: &b)
            } catch let error as StoreError where b.lenient {
                b.problems.append(error)
            }
        }
        return b.finish(.jsonl)
    }

    private static func jsonLine(
        _ text: UnsafeRawBufferPointer, line: Int, path: String, options o: DatasetOptions, into b: inout Builder
    ) throws {
        let obj = try JSONLines.object(text, path: path, line: line)
        /// A member that may be absent or null.
        func member(_ canonical: String) -> (name: String, value: JSON)? {
            let name = o.field(canonical)
            guard let v = obj[name], !v.isNull else { return nil }
            return (name, v)
        }
        func string(_ canonical: String, required: Bool) throws -> String? {
            guard let (name, v) = member(canonical) else {
                if required { throw fileError(.badLine, path, line: line, "the line lacks the field '\(o.field(canonical))'") }
                return nil
            }
            guard let s = v.stringValue else {
                throw fileError(.badLine, path, line: line, "'\(name)' is \(v.kindDescription), not a string")
            }
            return s
        }
        let id = try member("id").map { try JSONLines.stringOrInteger($0.value, name: $0.name, path: path, line: line) }
        let label = try member("label").map { name, v -> DatasetLabel in
            if let i = v.intValue { return .integer(i) }
            return .string(try JSONLines.stringOrInteger(v, name: name, path: path, line: line))
        }
        try b.add(
            id: id, full: string("full", required: true)!, simplified: string("simplified", required: true)!,
            target: string("target", required: false), label: label, line: line)
    }

    static func csv(_ bytes: UnsafeRawBufferPointer, _ source: DatasetSource) throws -> LoadedDataset {
        let path = source.path
        let o = source.options
        let records = try CSV.parse(bytes, delimiter: DatasetLoader.delimiter(source), path: path)
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
        var b = Builder(path: path)
        for r in records.dropFirst() {
            try r.requireWidth(of: header, path: path)
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
}
