import DistillJSON
import DistillTensor

/// A parsed and validated teacher file, before it becomes a registry entry.
public struct LoadedTeacher: Sendable {
    public var outputs: ModelOutputs
    public var format: TeacherFormat
    /// The dtype of the values as stored (before any conversion).
    public var sourceDtype: String
    public var ids: [String]?
    public var vocabulary: [String]?
    public var warnings: [String]
    /// Bytes copied into process memory (conversions, masks, JSON Lines values).
    public var residentBytes: Int
    /// Bytes of file mapped (the whole file for safetensors and .npy).
    public var mappedBytes: Int
    public var nonFinite: NonFiniteCounts
    public var metadata: [String: String]
}

/// Loads teacher outputs from safetensors, `.npy` or JSON Lines.
///
/// ## safetensors tensor names
/// - dense: one of `logits`, `probs`, `logprobs`, shape [N,V] (T = 1) or [N,T,V],
///   dtype F32, F16 or BF16 (F64 is converted to an F32 copy with a warning);
/// - top-k: `topk_indices` (I32 or I64) with one of `topk_logits`, `topk_probs`,
///   `topk_logprobs` (float, as above), both [N,T,K] or [N,K];
/// - optional `mask` [N,T] (U8, BOOL, I32, I64; non-zero = valid; copied to uint8)
///   or `lengths` [N] (I32, I64; the first lengths[n] positions are valid);
/// - `__metadata__` (all values strings): `ids` (a JSON list of N strings),
///   `vocab` (a JSON list of strings), `vocab_size` (decimal; needed for top-k unless
///   the vocabSize option or a vocabulary gives it).
/// Other tensors are ignored with a warning. When several value tensors are
/// present the `kind` option picks one (dense before top-k for the same kind).
///
/// ## .npy
/// One array of dense values [N,V] or [N,T,V] whose meaning is the `kind` option
/// (default logits). With the `indices` option (an int .npy of the same shape) the
/// values are top-k values; the `mask` option names an [N,T] mask .npy.
///
/// ## JSON Lines
/// One example per line: {"id": str|int (optional), "logits"|"probs"|"logprobs":
/// [[V values] per position] or [V values], or "topk_indices" + "topk_values" (same
/// nesting, K per position) with "kind" (default logits), optional "mask" (one 0/1 or
/// bool per position)}. Non-finite values are written as the strings "NaN",
/// "Infinity", "-Infinity". Rows with fewer positions than the longest are padded
/// with zeros and masked out.
///
/// ## Validation
/// NaN and +∞ in the values (and −∞ in probs) refuse the load with `.nonFinite`
/// unless `allowNonFinite` is set; −∞ in logits or logprobs is allowed (a masked
/// vocabulary entry) and counted apart. Top-k indices must lie in [0, vocab).
public enum TeacherLoader {
    /// Tells the format from the file's first bytes, falling back on its extension.
    public static func detectFormat(path: String) throws -> TeacherFormat {
        let map = try MappedFile(path: path)
        return try map.withBytes { b in try detectFormat(bytes: b, path: path) }
    }

    static func detectFormat(bytes b: UnsafeRawBufferPointer, path: String) throws -> TeacherFormat {
        if b.count >= 6, Array(b[0..<6]) == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59] { return .npy }
        if b.count >= 9, let base = b.baseAddress {
            let n = base.loadUnaligned(as: UInt64.self).littleEndian
            if n >= 2, n < 100_000_000, b[8] == UInt8(ascii: "{") { return .safetensors }
        }
        if firstNonSpace(droppingBOM(b)) == UInt8(ascii: "{") { return .jsonl }
        let lower = path.lowercased()
        if lower.hasSuffix(".safetensors") { return .safetensors }
        if lower.hasSuffix(".npy") { return .npy }
        if lower.hasSuffix(".jsonl") || lower.hasSuffix(".ndjson") { return .jsonl }
        throw fileError(.unknownFormat, path, "cannot tell the format from the content; give format (safetensors, npy, jsonl)")
    }

    /// Parses and validates a teacher file. `progress` receives the fraction of the
    /// value bytes scanned; `isCancelled` is polled between 8 MiB chunks and a
    /// cancelled load throws `CancellationError`.
    ///
    /// `budget` (the registry's memory budget) bounds what parsing may allocate
    /// before the registry sees the size: a JSON Lines line longer than
    /// `maxLineBytes(budget:)` and padded JSON Lines outputs larger than the
    /// budget are refused, naming the line. A file truncated while it is read
    /// fails the load with `.fileChanged`.
    public static func load(
        _ source: TeacherSource, progress: ((Double) -> Void)? = nil, isCancelled: (() -> Bool)? = nil,
        budget: Int? = nil
    ) throws -> LoadedTeacher {
        try source.checkPaths()
        return try FileGuard.run {
            let format = try source.format ?? detectFormat(path: source.path)
            var parts: Parts
            switch format {
            case .safetensors: parts = try safetensorsParts(source)
            case .npy: parts = try npyParts(source)
            case .jsonl: parts = try jsonlParts(source, budget: budget)
            }
            return try finish(&parts, format: format, options: source.options, progress: progress, isCancelled: isCancelled)
        }
    }

    /// The longest JSON Lines line parsed under a memory budget: a parsed line
    /// takes about ten times its length while it is converted (jansson's tree of
    /// numbers), so a line may take a sixteenth of the budget. Nil: no budget.
    public static func maxLineBytes(budget: Int?) -> Int? {
        budget.map { max($0 / 16, 4096) }
    }

    static func checkLineLength(_ bytes: UnsafeRawBufferPointer, limit: Int?, path: String, line: Int, budget: Int?) throws {
        guard let limit, bytes.count > limit else { return }
        throw fileError(
            .tooLarge, path, line: line, numbers: ["bytes": bytes.count, "limit": limit, "budget": budget ?? 0],
            "the line is \(bytes.count) bytes; under the \(budget ?? 0)-byte memory budget a line may hold at most \(limit) bytes (a sixteenth of the budget)"
        )
    }

    // MARK: - Shared assembly

    struct Parts {
        var path: String
        var kind: OutputKind
        var sourceDtype: String
        /// [N,T,V] dense or [N,T,K] top-k values, a float type.
        var values: Tensor
        var valuesName: String?
        var valuesMap: MappedFile?
        var indices: Tensor?
        var indicesName: String?
        var vocab: Int?
        var mask: Tensor?
        var ids: [String]?
        /// Where each id came from, for duplicate messages: ("line", n) or ("row", n).
        var idLines: [Int]?
        var vocabulary: [String]?
        var warnings: [String] = []
        var resident = 0
        var mapped = 0
        var metadata: [String: String] = [:]
    }

    static func finish(
        _ p: inout Parts, format: TeacherFormat, options: TeacherOptions, progress: ((Double) -> Void)?,
        isCancelled: (() -> Bool)?
    ) throws -> LoadedTeacher {
        let shape = p.values.shape
        let (n, t) = (shape[0], shape[1])
        // Float values: float64 becomes a float32 copy.
        if p.values.dtype == .float64 {
            p.values = convertToFloat32(p.values)
            p.resident += p.values.storage.byteCount
            p.valuesMap = nil
            p.warnings.append("\(p.valuesName ?? "values") are float64; converted to a float32 copy")
        } else if !p.values.dtype.isFloatingPoint {
            p.values = convertToFloat32(p.values)
            p.resident += p.values.storage.byteCount
            p.valuesMap = nil
            p.warnings.append("\(p.valuesName ?? "values") are \(p.sourceDtype) integers; converted to a float32 copy")
        }
        // Non-finite values.
        let scan = ScanProgress(total: p.values.storage.byteCount, progress: progress, isCancelled: isCancelled)
        let counts = try NonFiniteScanner.scan(p.values.storage, dtype: p.values.dtype, map: p.valuesMap, progress: scan)
        let refused = counts.nan + counts.posInf + (p.kind == .probs ? counts.negInf : 0)
        if refused > 0 {
            let what = "\(counts.nan) NaN, \(counts.posInf) +Infinity" + (p.kind == .probs ? ", \(counts.negInf) -Infinity" : "")
            if options.allowNonFinite {
                p.warnings.append("\(p.valuesName ?? p.kind.rawValue) hold non-finite values (\(what)); kept because allowNonFinite is set")
            } else {
                throw fileError(
                    .nonFinite, p.path, tensor: p.valuesName,
                    numbers: ["nan": counts.nan, "posInf": counts.posInf, "negInf": counts.negInf],
                    "\(p.kind.rawValue) hold non-finite values: \(what) (set allowNonFinite to keep them)")
            }
        }
        // Vocabulary file.
        if let vpath = options.vocabulary {
            if p.vocabulary != nil { p.warnings.append("the vocabulary option overrides the file's own vocabulary") }
            p.vocabulary = try Vocabulary.read(path: vpath)
        }
        // Vocabulary size and top-k indices.
        let vocab: Int
        let layout: ModelOutputs.Layout
        if let indices = p.indices {
            guard let v = options.vocabSize ?? p.vocab ?? p.vocabulary?.count else {
                throw fileError(
                    .malformedHeader, p.path,
                    "top-k outputs need the vocabulary size: give __metadata__.vocab_size, the vocabSize option or a vocabulary")
            }
            vocab = v
            try checkIndices(indices, vocab: v, path: p.path, name: p.indicesName)
            try checkDistinctIndices(indices, path: p.path, name: p.indicesName ?? "indices")
            layout = .topK(indices: indices, values: p.values)
        } else {
            vocab = shape[2]
            if let v = options.vocabSize ?? p.vocab, v != vocab {
                p.warnings.append("the vocabulary size \(v) differs from the \(vocab) dense outputs; using \(vocab)")
            }
            layout = .dense(values: p.values)
        }
        if let voc = p.vocabulary, voc.count != vocab {
            p.warnings.append("the vocabulary has \(voc.count) labels for \(vocab) outputs; missing labels read as <id N>")
        }
        // Ids.
        if let ids = p.ids {
            guard ids.count == n else {
                throw fileError(
                    .shapeMismatch, p.path, numbers: ["expected": n, "actual": ids.count],
                    "there are \(ids.count) ids for \(n) examples")
            }
            var seen: [String: Int] = [:]
            for (i, id) in ids.enumerated() {
                if let first = seen[id] {
                    if let lines = p.idLines {
                        throw fileError(
                            .duplicateId, p.path, line: lines[i], numbers: ["firstLine": lines[first]],
                            "id '\(id)' already appeared on line \(lines[first])")
                    }
                    throw fileError(
                        .duplicateId, p.path, numbers: ["row": i, "firstRow": first],
                        "id '\(id)' appears at rows \(first) and \(i)")
                }
                seen[id] = i
            }
        }
        let outputs = ModelOutputs(kind: p.kind, layout: layout, examples: n, positions: t, vocab: vocab, mask: p.mask)
        return LoadedTeacher(
            outputs: outputs, format: format, sourceDtype: p.sourceDtype, ids: p.ids, vocabulary: p.vocabulary,
            warnings: p.warnings, residentBytes: p.resident, mappedBytes: p.mapped, nonFinite: counts, metadata: p.metadata)
    }

    static func convertToFloat32(_ t: Tensor) -> Tensor {
        let count = t.elementCount
        let storage = TensorStorage(byteCount: count * 4) { out in
            let o = out.bindMemory(to: Float.self)
            let b = t.storage.base
            for i in 0..<count {
                switch t.dtype {
                case .float64: o[i] = Float(b.loadUnaligned(fromByteOffset: i * 8, as: Double.self))
                case .int64: o[i] = Float(b.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))
                case .int32: o[i] = Float(b.loadUnaligned(fromByteOffset: i * 4, as: Int32.self))
                case .uint8, .bool: o[i] = Float(b.load(fromByteOffset: i, as: UInt8.self))
                default: o[i] = 0
                }
            }
        }
        return try! Tensor(storage: storage, dtype: .float32, shape: t.shape)
    }

    /// Refuses a row (one example and position) whose top-k indices name an
    /// output twice, naming the tensor, the row and the index.
    ///
    /// Inline data (`path` nil) names the request member `name` instead of a file.
    static func checkDistinctIndices(_ t: Tensor, path: String?, name: String?) throws {
        let k = t.shape.last ?? 0
        guard k > 1, t.dtype == .int32 || t.dtype == .int64 else { return }
        let rows = t.elementCount / k
        let positions = t.rank == 3 ? t.shape[1] : 1
        let base = t.storage.base
        var row = [Int64](repeating: 0, count: k)
        for r in 0..<rows {
            for j in 0..<k {
                row[j] =
                    t.dtype == .int32
                    ? Int64(base.loadUnaligned(fromByteOffset: (r * k + j) * 4, as: Int32.self))
                    : base.loadUnaligned(fromByteOffset: (r * k + j) * 8, as: Int64.self)
            }
            row.sort()
            for j in 1..<k where row[j] == row[j - 1] {
                let (example, position) = (r / positions, r % positions)
                var slots: [Int] = []
                for c in 0..<k {
                    let v =
                        t.dtype == .int32
                        ? Int64(base.loadUnaligned(fromByteOffset: (r * k + c) * 4, as: Int32.self))
                        : base.loadUnaligned(fromByteOffset: (r * k + c) * 8, as: Int64.self)
                    if v == row[j] { slots.append(c) }
                }
                let numbers = ["example": example, "position": position, "index": Int(row[j]), "first": slots[0], "second": slots[1]]
                let what =
                    "example \(example), position \(position): top-k index \(row[j]) appears twice (at k = \(slots[0]) and \(slots[1]))"
                guard let path else {
                    throw StoreError(.duplicateIndex, what, field: name, numbers: numbers)
                }
                throw fileError(.duplicateIndex, path, tensor: name, numbers: numbers, what)
            }
        }
    }

    static func checkIndices(_ t: Tensor, vocab: Int, path: String, name: String?) throws {
        let count = t.elementCount
        let base = t.storage.base
        var bad = 0
        var first = -1
        var firstValue: Int64 = 0
        if t.dtype == .int32 {
            let p = base.assumingMemoryBound(to: Int32.self)
            let v = Int32(clamping: vocab)
            for i in 0..<count where p[i] < 0 || p[i] >= v {
                if first < 0 { (first, firstValue) = (i, Int64(p[i])) }
                bad += 1
            }
        } else {
            let p = base.assumingMemoryBound(to: Int64.self)
            let v = Int64(vocab)
            for i in 0..<count where p[i] < 0 || p[i] >= v {
                if first < 0 { (first, firstValue) = (i, p[i]) }
                bad += 1
            }
        }
        guard bad == 0 else {
            let at = unflatten(first, t.shape).map { "[\($0)]" }.joined()
            throw fileError(
                .indexOutOfRange, path, tensor: name,
                numbers: ["count": bad, "first": first, "value": Int(firstValue), "vocab": vocab],
                "\(bad) top-k indices lie outside [0, \(vocab)); the first is \(firstValue) at \(at)")
        }
    }

    static func unflatten(_ flat: Int, _ shape: [Int]) -> [Int] {
        var rest = flat
        var out = [Int](repeating: 0, count: shape.count)
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            out[d] = rest % max(shape[d], 1)
            rest /= max(shape[d], 1)
        }
        return out
    }

    /// A uint8 [N,T] copy of a mask tensor (non-zero = 1).
    static func maskCopy(_ t: Tensor, n: Int, positions: Int, path: String, name: String) throws -> Tensor {
        guard t.shape == [n, positions] || (positions == 1 && t.shape == [n]) else {
            throw fileError(
                .shapeMismatch, path, tensor: name,
                "the mask has shape \(t.shape) but the outputs need [\(n), \(positions)]")
        }
        let count = n * positions
        let b = t.storage.base
        let storage = try TensorStorage(byteCount: count) { out in
            for i in 0..<count {
                let nonzero: Bool
                switch t.dtype {
                case .uint8, .bool: nonzero = b.load(fromByteOffset: i, as: UInt8.self) != 0
                case .int32: nonzero = b.loadUnaligned(fromByteOffset: i * 4, as: Int32.self) != 0
                case .int64: nonzero = b.loadUnaligned(fromByteOffset: i * 8, as: Int64.self) != 0
                default:
                    throw fileError(.unsupportedDtype, path, tensor: name, "a mask must be U8, BOOL, I32 or I64, not \(t.dtype.rawValue)")
                }
                out[i] = nonzero ? 1 : 0
            }
        }
        return try Tensor(storage: storage, dtype: .uint8, shape: [n, positions])
    }

    /// A uint8 [N,T] mask from per-example lengths.
    static func maskFromLengths(_ t: Tensor, n: Int, positions: Int, path: String, name: String) throws -> Tensor {
        guard t.shape == [n] else {
            throw fileError(.shapeMismatch, path, tensor: name, "lengths have shape \(t.shape) but the outputs need [\(n)]")
        }
        guard t.dtype == .int32 || t.dtype == .int64 else {
            throw fileError(.unsupportedDtype, path, tensor: name, "lengths must be I32 or I64, not \(t.dtype.rawValue)")
        }
        let b = t.storage.base
        let storage = try TensorStorage(byteCount: n * positions) { out in
            for i in 0..<n {
                let len =
                    t.dtype == .int32
                    ? Int(b.loadUnaligned(fromByteOffset: i * 4, as: Int32.self))
                    : Int(b.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))
                guard len >= 0, len <= positions else {
                    throw fileError(
                        .indexOutOfRange, path, tensor: name, numbers: ["row": i, "value": len, "positions": positions],
                        "lengths[\(i)] = \(len) lies outside [0, \(positions)]")
                }
                for j in 0..<positions { out[i * positions + j] = j < len ? 1 : 0 }
            }
        }
        return try Tensor(storage: storage, dtype: .uint8, shape: [n, positions])
    }

    /// Views an [N,V] tensor as [N,1,V] (same storage).
    static func asThreeD(_ t: Tensor, path: String, name: String, what: String) throws -> Tensor {
        switch t.rank {
        case 3: return t
        case 2: return try Tensor(storage: t.storage, dtype: t.dtype, shape: [t.shape[0], 1, t.shape[1]])
        default:
            throw fileError(
                .shapeMismatch, path, tensor: name,
                "\(what) have shape \(t.shape); expected [N, \(what == "top-k values" ? "K" : "V")] or [N, T, \(what == "top-k values" ? "K" : "V")]"
            )
        }
    }

    // MARK: - safetensors

    static func safetensorsParts(_ source: TeacherSource) throws -> Parts {
        let file = try SafetensorsFile(path: source.path)
        let path = source.path
        var warnings: [String] = []
        let kinds = source.options.kind.map { [$0] } ?? OutputKind.allCases
        let dense = kinds.filter { file.entries[$0.rawValue] != nil }
        let topk = kinds.filter { file.entries["topk_" + $0.rawValue] != nil }
        let kind: OutputKind
        let valuesName: String
        if dense.count == 1 {
            kind = dense[0]
            valuesName = kind.rawValue
        } else if dense.isEmpty, topk.count == 1 {
            kind = topk[0]
            valuesName = "topk_" + kind.rawValue
        } else if dense.count + topk.count == 0 {
            let wanted =
                source.options.kind.map { "'\($0.rawValue)' or 'topk_\($0.rawValue)'" }
                ?? "logits, probs, logprobs or topk_logits, topk_probs, topk_logprobs"
            throw fileError(.malformedHeader, path, "no value tensor: expected one of \(wanted)")
        } else {
            let names = dense.map(\.rawValue) + topk.map { "topk_" + $0.rawValue }
            throw fileError(
                .malformedHeader, path, "several value tensors (\(names.joined(separator: ", "))); choose one with the kind option")
        }
        let isTopK = valuesName.hasPrefix("topk_")
        let (raw, valuesCopied) = try file.tensor(valuesName)
        guard raw.dtype.isFloatingPoint else {
            throw fileError(
                .unsupportedDtype, path, tensor: valuesName,
                "dtype \(file.entries[valuesName]!.dtypeName) is not a float type (F32, F16, BF16)")
        }
        let values = try asThreeD(raw, path: path, name: valuesName, what: isTopK ? "top-k values" : "dense values")
        let (n, t) = (values.shape[0], values.shape[1])
        var resident = valuesCopied ? values.storage.byteCount : 0
        if valuesCopied { warnings.append("\(valuesName) is not aligned to its element width in the file; copied") }
        var indices: Tensor?
        if isTopK {
            guard file.entries["topk_indices"] != nil else {
                throw fileError(.malformedHeader, path, tensor: "topk_indices", "top-k values need a 'topk_indices' tensor")
            }
            let (rawIdx, idxCopied) = try file.tensor("topk_indices")
            guard rawIdx.dtype == .int32 || rawIdx.dtype == .int64 else {
                throw fileError(
                    .unsupportedDtype, path, tensor: "topk_indices", "dtype \(file.entries["topk_indices"]!.dtypeName) is not I32 or I64")
            }
            let idx = try asThreeD(rawIdx, path: path, name: "topk_indices", what: "top-k values")
            guard idx.shape == values.shape else {
                throw fileError(
                    .shapeMismatch, path, tensor: "topk_indices",
                    "topk_indices have shape \(rawIdx.shape) but \(valuesName) have \(raw.shape)")
            }
            if idxCopied { resident += idx.storage.byteCount }
            indices = idx
        }
        var mask: Tensor?
        if file.entries["mask"] != nil {
            let (m, _) = try file.tensor("mask")
            mask = try maskCopy(m, n: n, positions: t, path: path, name: "mask")
            if file.entries["lengths"] != nil { warnings.append("both mask and lengths are present; using mask") }
        } else if file.entries["lengths"] != nil {
            let (l, _) = try file.tensor("lengths")
            mask = try maskFromLengths(l, n: n, positions: t, path: path, name: "lengths")
        }
        resident += mask?.storage.byteCount ?? 0
        let used: Set<String> = [valuesName, "topk_indices", "mask", "lengths"]
        for name in file.entries.keys.sorted() where !used.contains(name) || (name == "topk_indices" && !isTopK) {
            warnings.append("tensor '\(name)' is not used")
        }
        var ids: [String]?
        var vocabulary: [String]?
        var vocab: Int?
        if let s = file.metadata["ids"] {
            ids = try stringList(s, path: path, key: "ids")
        }
        if let s = file.metadata["vocab"] {
            vocabulary = try stringList(s, path: path, key: "vocab")
        }
        if let s = file.metadata["vocab_size"] {
            guard let v = Int(s.trimmingSpaces), v > 0 else {
                throw fileError(.malformedHeader, path, "__metadata__.vocab_size is '\(s)', not a positive integer")
            }
            vocab = v
        }
        return Parts(
            path: path, kind: kind, sourceDtype: file.entries[valuesName]!.dtypeName, values: values,
            valuesName: valuesName, valuesMap: valuesCopied ? nil : file.map, indices: indices,
            indicesName: isTopK ? "topk_indices" : nil, vocab: vocab, mask: mask, ids: ids, idLines: nil,
            vocabulary: vocabulary, warnings: warnings, resident: resident, mapped: file.map.size,
            metadata: file.metadata)
    }

    static func stringList(_ text: String, path: String, key: String) throws -> [String] {
        let json: JSON
        do { json = try JSON.parse(text) } catch let e as JSONParseError {
            throw fileError(.malformedHeader, path, "__metadata__.\(key) is not JSON: \(e.message)")
        }
        guard let items = json.arrayValue else {
            throw fileError(.malformedHeader, path, "__metadata__.\(key) is \(json.kindDescription), not a JSON list of strings")
        }
        return try items.enumerated().map { i, item in
            guard let s = item.stringValue else {
                throw fileError(.malformedHeader, path, "__metadata__.\(key)[\(i)] is \(item.kindDescription), not a string")
            }
            return s
        }
    }

    // MARK: - .npy

    static func npyParts(_ source: TeacherSource) throws -> Parts {
        let path = source.path
        let array = try NpyArray(path: path)
        var warnings: [String] = []
        let kind = source.options.kind ?? .logits
        let isTopK = source.options.indices != nil
        let values = try asThreeD(array.tensor, path: path, name: "values", what: isTopK ? "top-k values" : "dense values")
        let (n, t) = (values.shape[0], values.shape[1])
        var resident = array.mapped ? 0 : values.storage.byteCount
        var mapped = array.map.size
        var indices: Tensor?
        if let ipath = source.options.indices {
            let idx = try NpyArray(path: ipath)
            guard idx.tensor.dtype == .int32 || idx.tensor.dtype == .int64 else {
                throw fileError(.unsupportedDtype, ipath, "top-k indices must be <i4 or <i8, not \(idx.descr)")
            }
            let i3 = try asThreeD(idx.tensor, path: ipath, name: "indices", what: "top-k values")
            guard i3.shape == values.shape else {
                throw fileError(
                    .shapeMismatch, ipath, "the indices have shape \(idx.tensor.shape) but the values have \(array.tensor.shape)")
            }
            indices = i3
            mapped += idx.map.size
            if !idx.mapped { resident += i3.storage.byteCount }
        }
        var mask: Tensor?
        if let mpath = source.options.mask {
            let m = try NpyArray(path: mpath)
            mask = try maskCopy(m.tensor, n: n, positions: t, path: mpath, name: "mask")
            resident += mask!.storage.byteCount
        }
        if !array.mapped { warnings.append("the data is not aligned to its element width; copied") }
        return Parts(
            path: path, kind: kind, sourceDtype: array.descr, values: values, valuesName: nil,
            valuesMap: array.mapped ? array.map : nil, indices: indices, indicesName: nil, vocab: nil, mask: mask,
            ids: nil, idLines: nil, vocabulary: nil, warnings: warnings, resident: resident, mapped: mapped)
    }

    // MARK: - JSON Lines

    static func jsonlParts(_ source: TeacherSource, budget: Int?) throws -> Parts {
        let path = source.path
        let lineLimit = maxLineBytes(budget: budget)
        let map = try MappedFile(path: path)
        struct Row {
            var line: Int
            var id: String?
            var values: [Float]
            var indices: [Int64]
            var positions: Int
            var mask: [UInt8]?
        }
        var rows: [Row] = []
        var layoutTopK: Bool?
        var kind: OutputKind?
        var width = -1
        var anyId = false
        var anyMissingId = false
        var firstLine = 0
        try map.withBytes { raw in
            try forEachLine(droppingBOM(raw)) { lineNo, bytes in
                if isBlank(bytes) { return }
                try checkLineLength(bytes, limit: lineLimit, path: path, line: lineNo, budget: budget)
                if firstLine == 0 { firstLine = lineNo }
                let obj: JSON
                do { obj = try JSON.parse(bytes) } catch let e as JSONParseError {
                    throw fileError(
                        .badLine, path, line: lineNo, numbers: ["column": e.column], "not JSON: \(e.message) (column \(e.column))")
                }
                guard obj.isObject else {
                    throw fileError(.badLine, path, line: lineNo, "the line holds \(obj.kindDescription), not an object")
                }
                var id: String?
                if let j = obj["id"] {
                    if let s = j.stringValue {
                        id = s
                    } else if let i = j.intValue {
                        id = String(i)
                    } else {
                        throw fileError(.badLine, path, line: lineNo, "'id' is \(j.kindDescription), not a string or integer")
                    }
                }
                if id == nil { anyMissingId = true } else { anyId = true }
                if anyId && anyMissingId {
                    throw fileError(.badLine, path, line: lineNo, "the lines disagree: some have an 'id' and some do not")
                }
                let wanted = source.options.kind.map { [$0] } ?? OutputKind.allCases
                let dense = wanted.filter { obj[$0.rawValue] != nil }
                let hasTopK = obj["topk_indices"] != nil || obj["topk_values"] != nil
                let topK: Bool
                var lineKind: OutputKind
                var row = Row(line: lineNo, id: id, values: [], indices: [], positions: 0, mask: nil)
                func numbers(_ field: String) throws -> (values: [Float], shape: [Int]) {
                    do { return try obj[field]!.flattenedNumbers(maxRank: 2) } catch let e as NumericArrayError {
                        throw fileError(.badLine, path, line: lineNo, "'\(field)'\(e.path): \(e.message)")
                    }
                }
                if dense.count == 1, !hasTopK {
                    topK = false
                    lineKind = dense[0]
                    let (v, shape) = try numbers(lineKind.rawValue)
                    row.values = v
                    row.positions = shape.count == 2 ? shape[0] : 1
                    let w = shape.last!
                    if width < 0 { width = w }
                    guard w == width else {
                        throw fileError(
                            .shapeMismatch, path, line: lineNo, numbers: ["expected": width, "actual": w],
                            "'\(lineKind.rawValue)' has \(w) values per position where earlier lines have \(width)")
                    }
                } else if dense.isEmpty, hasTopK {
                    topK = true
                    guard obj["topk_indices"] != nil, obj["topk_values"] != nil else {
                        throw fileError(.badLine, path, line: lineNo, "top-k outputs need both 'topk_indices' and 'topk_values'")
                    }
                    lineKind = source.options.kind ?? .logits
                    if let k = obj["kind"] {
                        guard let s = k.stringValue, let kk = OutputKind(rawValue: s) else {
                            throw fileError(.badLine, path, line: lineNo, "'kind' must be one of logits, probs, logprobs")
                        }
                        if let wantedKind = source.options.kind, wantedKind != kk {
                            throw fileError(
                                .badLine, path, line: lineNo, "'kind' is \(s) but the kind option asks for \(wantedKind.rawValue)")
                        }
                        lineKind = kk
                    }
                    let (v, shape) = try numbers("topk_values")
                    let (ix, ishape): ([Int64], [Int])
                    do { (ix, ishape) = try obj["topk_indices"]!.flattenedIntegers(maxRank: 2) } catch let e as NumericArrayError {
                        throw fileError(.badLine, path, line: lineNo, "'topk_indices'\(e.path): \(e.message)")
                    }
                    guard ishape == shape else {
                        throw fileError(
                            .shapeMismatch, path, line: lineNo, "'topk_indices' has shape \(ishape) but 'topk_values' has \(shape)")
                    }
                    row.values = v
                    row.indices = ix
                    row.positions = shape.count == 2 ? shape[0] : 1
                    let w = shape.last!
                    if width < 0 { width = w }
                    guard w == width else {
                        throw fileError(
                            .shapeMismatch, path, line: lineNo, numbers: ["expected": width, "actual": w],
                            "the line has k = \(w) where earlier lines have k = \(width)")
                    }
                } else if dense.isEmpty {
                    let names = source.options.kind.map { "'\($0.rawValue)'" } ?? "'logits', 'probs' or 'logprobs'"
                    throw fileError(.badLine, path, line: lineNo, "the line lacks a \(names) field (or 'topk_indices' and 'topk_values')")
                } else {
                    throw fileError(.badLine, path, line: lineNo, "the line holds several value fields; choose one with the kind option")
                }
                if let l = layoutTopK, l != topK {
                    throw fileError(.badLine, path, line: lineNo, "the line mixes dense and top-k outputs with earlier lines")
                }
                layoutTopK = topK
                if let k = kind, k != lineKind {
                    throw fileError(
                        .badLine, path, line: lineNo, "the line holds \(lineKind.rawValue) where earlier lines hold \(k.rawValue)")
                }
                kind = lineKind
                if let m = obj["mask"] {
                    guard let items = m.arrayValue, items.count == row.positions else {
                        throw fileError(.shapeMismatch, path, line: lineNo, "'mask' must be a list of \(row.positions) booleans or 0/1")
                    }
                    row.mask = try items.map { item in
                        if let b = item.boolValue { return b ? 1 : 0 }
                        if let i = item.intValue { return i != 0 ? 1 : 0 }
                        throw fileError(.badLine, path, line: lineNo, "'mask' holds \(item.kindDescription)")
                    }
                }
                rows.append(row)
            }
        }
        guard let topK = layoutTopK, let kind else {
            throw fileError(.badLine, path, line: 1, "the file holds no examples")
        }
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
        let values = TensorStorage(byteCount: n * t * w * 4) { out in
            let o = out.bindMemory(to: Float.self)
            o.initialize(repeating: 0)
            for (i, r) in rows.enumerated() {
                for (j, v) in r.values.enumerated() { o[i * t * w + j] = v }
            }
        }
        var indices: Tensor?
        var maxIndex: Int64 = -1
        if topK {
            let s = TensorStorage(byteCount: n * t * w * 8) { out in
                let o = out.bindMemory(to: Int64.self)
                o.initialize(repeating: 0)
                for (i, r) in rows.enumerated() {
                    for (j, v) in r.indices.enumerated() {
                        o[i * t * w + j] = v
                        maxIndex = max(maxIndex, v)
                    }
                }
            }
            indices = try Tensor(storage: s, dtype: .int64, shape: [n, t, w])
        }
        var mask: Tensor?
        if ragged || rows.contains(where: { $0.mask != nil }) {
            let s = TensorStorage(byteCount: n * t) { out in
                for (i, r) in rows.enumerated() {
                    for j in 0..<t {
                        out[i * t + j] = j < r.positions ? (r.mask?[j] ?? 1) : 0
                    }
                }
            }
            mask = try Tensor(storage: s, dtype: .uint8, shape: [n, t])
        }
        var vocab: Int?
        if topK, source.options.vocabSize == nil, source.options.vocabulary == nil {
            vocab = Int(maxIndex) + 1
            warnings.append("no vocabulary size given for top-k outputs; using the largest index + 1 = \(vocab!)")
        }
        let resident = values.byteCount + (indices?.storage.byteCount ?? 0) + (mask?.storage.byteCount ?? 0)
        return Parts(
            path: path, kind: kind, sourceDtype: "json", values: try Tensor(storage: values, dtype: .float32, shape: [n, t, w]),
            valuesName: nil, valuesMap: nil, indices: indices, indicesName: nil, vocab: vocab, mask: mask,
            ids: anyId ? rows.map { $0.id! } : nil, idLines: rows.map(\.line), vocabulary: nil, warnings: warnings,
            resident: resident, mapped: 0)
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
