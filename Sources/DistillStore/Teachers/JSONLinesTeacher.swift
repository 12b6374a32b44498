import DistillJSON
import DistillTensor

/// Reads a JSON Lines teacher: one example per line, dense values or top-k pairs, the
/// lines agreeing on layout, kind, width and whether they carry ids. Rows with fewer
/// positions are padded to the longest and masked.
struct JSONLinesTeacher {
    /// One line's example.
    struct Row {
        var line: Int
        var id: String?
        /// Positions × width values (dense outputs or top-k values), row-major.
        var values: [Float] = []
        /// Positions × K indices, for top-k rows.
        var indices: [Int64] = []
        var positions = 0
        var mask: [UInt8]?
    }

    let path: String
    /// The `kind` option: which field to read, and what top-k values are.
    let kindOption: OutputKind?
    var rows: [Row] = []
    var topK: Bool?
    var kind: OutputKind?
    /// Values per position (V dense, K top-k); -1 until the first line.
    var width = -1
    var anyId = false
    var anyMissingId = false

    /// Reads the mapped file; under a memory `budget` long lines and padding past it are refused.
    static func parts(_ map: MappedFile, _ source: TeacherSource, budget: Int?) throws -> TeacherParts {
        var reader = JSONLinesTeacher(path: source.path, kindOption: source.options.kind)
        let lineLimit = TeacherLoader.maxLineBytes(budget: budget)
        try map.withBytes { raw in
            try forEachLine(droppingBOM(raw)) { line, bytes in
                if isBlank(bytes) { return }
                try TeacherLoader.checkLineLength(bytes, limit: lineLimit, path: source.path, line: line, budget: budget)
                try reader.read(JSONLines.object(bytes, path: source.path, line: line), line: line)
            }
        }
        let sizeGiven = source.options.vocabSize != nil || source.options.vocabulary != nil
        return try reader.assemble(budget: budget, vocabularySizeGiven: sizeGiven)
    }

    func fail(_ line: Int, _ message: String) -> StoreError { fileError(.badLine, path, line: line, message) }

    /// Reads one line's object into a row, checking it against the lines before.
    mutating func read(_ obj: JSON, line: Int) throws {
        var row = Row(line: line, id: try obj["id"].map { try JSONLines.stringOrInteger($0, name: "id", path: path, line: line) })
        if row.id == nil { anyMissingId = true } else { anyId = true }
        if anyId && anyMissingId { throw fail(line, "the lines disagree: some have an 'id' and some do not") }
        let dense = (kindOption.map { [$0] } ?? OutputKind.allCases).filter { obj[$0.rawValue] != nil }
        let hasTopK = obj["topk_indices"] != nil || obj["topk_values"] != nil
        let lineKind: OutputKind
        switch (dense.count, hasTopK) {
        case (1, false): lineKind = try readDense(obj, kind: dense[0], into: &row)
        case (0, true): lineKind = try readTopK(obj, into: &row)
        case (0, false):
            let names = kindOption.map { "'\($0.rawValue)'" } ?? "'logits', 'probs' or 'logprobs'"
            throw fail(line, "the line lacks a \(names) field (or 'topk_indices' and 'topk_values')")
        default: throw fail(line, "the line holds several value fields; choose one with the kind option")
        }
        if let earlier = topK, earlier != hasTopK { throw fail(line, "the line mixes dense and top-k outputs with earlier lines") }
        topK = hasTopK
        if let k = kind, k != lineKind {
            throw fail(line, "the line holds \(lineKind.rawValue) where earlier lines hold \(k.rawValue)")
        }
        kind = lineKind
        if let m = obj["mask"] {
            guard let items = m.arrayValue, items.count == row.positions else {
                throw fileError(.shapeMismatch, path, line: line, "'mask' must be a list of \(row.positions) booleans or 0/1")
            }
            row.mask = try items.map { item in
                if let b = item.boolValue { return b ? 1 : 0 }
                if let i = item.intValue { return i != 0 ? 1 : 0 }
                throw fail(line, "'mask' holds \(item.kindDescription)")
            }
        }
        rows.append(row)
    }

    /// A `[V]` or `[[V] per position]` field of dense values.
    mutating func readDense(_ obj: JSON, kind: OutputKind, into row: inout Row) throws -> OutputKind {
        let shape: [Int]
        (row.values, shape) = try numbers(obj, kind.rawValue, line: row.line)
        try setShape(shape, of: &row) { w, width in "'\(kind.rawValue)' has \(w) values per position where earlier lines have \(width)" }
        return kind
    }

    /// `topk_indices` and `topk_values` of the same shape, and the values' kind.
    mutating func readTopK(_ obj: JSON, into row: inout Row) throws -> OutputKind {
        let line = row.line
        guard let indices = obj["topk_indices"], obj["topk_values"] != nil else {
            throw fail(line, "top-k outputs need both 'topk_indices' and 'topk_values'")
        }
        var kind = kindOption ?? .logits
        if let k = obj["kind"] {
            guard let s = k.stringValue, let given = OutputKind(rawValue: s) else {
                throw fail(line, "'kind' must be one of logits, probs, logprobs")
            }
            if let wanted = kindOption, wanted != given {
                throw fail(line, "'kind' is \(s) but the kind option asks for \(wanted.rawValue)")
            }
            kind = given
        }
        let shape: [Int]
        (row.values, shape) = try numbers(obj, "topk_values", line: line)
        let indexShape: [Int]
        do { (row.indices, indexShape) = try indices.flattenedIntegers(maxRank: 2) } catch let e as NumericArrayError {
            throw fail(line, "'topk_indices'\(e.path): \(e.message)")
        }
        guard indexShape == shape else {
            throw fileError(.shapeMismatch, path, line: line, "'topk_indices' has shape \(indexShape) but 'topk_values' has \(shape)")
        }
        try setShape(shape, of: &row) { w, width in "the line has k = \(w) where earlier lines have k = \(width)" }
        return kind
    }

    func numbers(_ obj: JSON, _ field: String, line: Int) throws -> (values: [Float], shape: [Int]) {
        do { return try obj[field]!.flattenedNumbers(maxRank: 2) } catch let e as NumericArrayError {
            throw fail(line, "'\(field)'\(e.path): \(e.message)")
        }
    }

    /// Positions and width from a `[W]` or `[T, W]` shape; every line has the first line's width.
    mutating func setShape(_ shape: [Int], of row: inout Row, mismatch: (Int, Int) -> String) throws {
        row.positions = shape.count == 2 ? shape[0] : 1
        let w = shape.last!
        if width < 0 { width = w }
        guard w == width else {
            throw fileError(.shapeMismatch, path, line: row.line, numbers: ["expected": width, "actual": w], mismatch(w, width))
        }
    }

    /// The rows as [N, T, W] tensors, shorter rows padded with zeros and masked out.
    func assemble(budget: Int?, vocabularySizeGiven: Bool) throws -> TeacherParts {
        guard let topK, let kind else { throw fail(1, "the file holds no examples") }
        let n = rows.count
        let t = rows.map(\.positions).max() ?? 1
        let w = width
        var warnings: [String] = []
        let ragged = rows.contains { $0.positions != t }
        if ragged { warnings.append("rows have different numbers of positions; shorter rows are padded and masked to \(t)") }
        // Padding makes N × T × K from rows of different lengths: check it fits before allocating.
        guard let valueBytes = Tensor.byteCount(shape: [n, t, w], width: topK ? 12 : 4) else {
            throw fileError(
                .tooLarge, path, numbers: ["examples": n, "positions": t, "width": w],
                "padding \(n) rows to \(t) positions of \(w) values does not fit in 64 bits")
        }
        if let budget, valueBytes > budget {
            let longest = rows.first { $0.positions == t }!.line
            throw fileError(
                .budgetExceeded, path, line: longest, numbers: ["budget": budget, "needed": valueBytes, "inUse": 0],
                "padding \(n) rows to the \(t) positions of this line takes \(valueBytes) bytes, more than the \(budget)-byte memory budget"
            )
        }
        let values = try Tensor(storage: padded(\.values, width: w, positions: t), dtype: .float32, shape: [n, t, w])
        let indices = topK ? try Tensor(storage: padded(\.indices, width: w, positions: t), dtype: .int64, shape: [n, t, w]) : nil
        var mask: Tensor?
        if ragged || rows.contains(where: { $0.mask != nil }) {
            let s = TensorStorage(byteCount: n * t) { out in
                for (i, r) in rows.enumerated() {
                    for j in 0..<t { out[i * t + j] = j < r.positions ? (r.mask?[j] ?? 1) : 0 }
                }
            }
            mask = try Tensor(storage: s, dtype: .uint8, shape: [n, t])
        }
        var vocab: Int?
        if topK, !vocabularySizeGiven {
            let largest = rows.lazy.compactMap { $0.indices.max() }.max() ?? -1
            vocab = Int(largest) + 1
            warnings.append("no vocabulary size given for top-k outputs; using the largest index + 1 = \(vocab!)")
        }
        let resident = values.storage.byteCount + (indices?.storage.byteCount ?? 0) + (mask?.storage.byteCount ?? 0)
        return TeacherParts(
            path: path, kind: kind, sourceDtype: "json", values: values, valuesName: nil, valuesMap: nil, indices: indices,
            indicesName: nil, vocab: vocab, mask: mask, ids: anyId ? rows.map { $0.id! } : nil, idLines: rows.map(\.line),
            vocabulary: nil, warnings: warnings, resident: resident, mapped: 0)
    }

    /// N × T × width elements of one row field, each row's values first and zeros after.
    func padded<Element: Numeric>(_ field: KeyPath<Row, [Element]>, width: Int, positions: Int) -> TensorStorage {
        TensorStorage(byteCount: rows.count * positions * width * MemoryLayout<Element>.stride) { out in
            let o = out.bindMemory(to: Element.self)
            o.initialize(repeating: 0)
            for (i, r) in rows.enumerated() {
                for (j, v) in r[keyPath: field].enumerated() { o[i * positions * width + j] = v }
            }
        }
    }
}
