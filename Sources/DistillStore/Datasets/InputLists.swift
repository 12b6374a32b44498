import DistillJSON

/// Input lists: plain text (one input per non-blank line), JSON Lines (field `input`),
/// a JSON list of strings, or CSV (column `input`); each input keeps its line.
enum InputLists {
    static func load(_ bytes: UnsafeRawBufferPointer, _ source: DatasetSource, _ format: DatasetFormat) throws -> LoadedDataset {
        let path = source.path
        let name = source.options.field("input")
        var inputs: [InputRecord] = []
        switch format {
        case .txt:
            forEachLine(bytes) { line, text in
                if !isBlank(text) { inputs.append(InputRecord(text: String(decoding: text, as: UTF8.self), line: line)) }
            }
        case .jsonl:
            try forEachLine(bytes) { line, text in
                if isBlank(text) { return }
                let obj = try JSONLines.object(text, path: path, line: line)
                guard let v = obj[name] else { throw fileError(.badLine, path, line: line, "the line lacks the field '\(name)'") }
                inputs.append(InputRecord(text: try string(v, what: "'\(name)'", path: path, line: line), line: line))
            }
        case .json:
            let json: JSON
            do { json = try JSON.parse(bytes) } catch let e as JSONParseError {
                throw fileError(.badLine, path, line: e.line, "not JSON: \(e.message) (column \(e.column))")
            }
            guard let items = json.arrayValue else {
                throw fileError(.badLine, path, line: 1, "the file holds \(json.kindDescription), not a list of strings")
            }
            let lines = topLevelElementLines(bytes)
            for (i, item) in items.enumerated() {
                let line = i < lines.count ? lines[i] : 1
                inputs.append(InputRecord(text: try string(item, what: "element \(i)", path: path, line: line), line: line))
            }
        case .csv:
            let records = try CSV.parse(bytes, delimiter: DatasetLoader.delimiter(source), path: path)
            guard let header = records.first else { throw fileError(.badLine, path, line: 1, "the file is empty") }
            guard let column = header.fields.firstIndex(of: name) else {
                throw fileError(.badLine, path, line: header.line, "the header row lacks the column '\(name)'")
            }
            for r in records.dropFirst() {
                try r.requireWidth(of: header, path: path)
                inputs.append(InputRecord(text: r.fields[column], line: r.line))
            }
        }
        return LoadedDataset(
            kind: .inputs, format: format, examples: [], inputs: inputs, idsSynthesized: true, warnings: [],
            bytes: inputs.reduce(0) { $0 + $1.residentBytes })
    }

    private static func string(_ value: JSON, what: String, path: String, line: Int) throws -> String {
        guard let s = value.stringValue else {
            throw fileError(.badLine, path, line: line, "\(what) is \(value.kindDescription), not a string")
        }
        return s
    }
}
