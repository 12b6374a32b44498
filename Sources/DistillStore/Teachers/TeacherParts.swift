import DistillTensor

/// What a format reader found in a teacher file, before the checks every format shares.
///
/// Each reader (safetensors, `.npy`, JSON Lines) fills one in; `finish` then converts
/// the values to a float type, counts non-finite values, reads the vocabulary, settles
/// the layout and the vocabulary size, and checks the ids.
struct TeacherParts {
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
    /// The line each id was read from (JSON Lines), for duplicate messages; nil: by row.
    var idLines: [Int]?
    var vocabulary: [String]?
    var warnings: [String] = []
    var resident = 0
    var mapped = 0
    var metadata: [String: String] = [:]

    mutating func finish(
        format: TeacherFormat, options: TeacherOptions, progress: ((Double) -> Void)?, isCancelled: (() -> Bool)?
    ) throws -> LoadedTeacher {
        convertValuesToFloat()
        let counts = try checkNonFinite(allowed: options.allowNonFinite, progress: progress, isCancelled: isCancelled)
        if let path = options.vocabulary {
            if vocabulary != nil { warnings.append("the vocabulary option overrides the file's own vocabulary") }
            vocabulary = try Vocabulary.read(path: path)
        }
        let (layout, vocab) = try settleLayout(vocabSize: options.vocabSize)
        try checkIds()
        let outputs = ModelOutputs(
            kind: kind, layout: layout, examples: values.shape[0], positions: values.shape[1], vocab: vocab, mask: mask)
        return LoadedTeacher(
            outputs: outputs, format: format, sourceDtype: sourceDtype, ids: ids, vocabulary: vocabulary,
            warnings: warnings, residentBytes: resident, mappedBytes: mapped, nonFinite: counts, metadata: metadata)
    }

    /// Float64 and integer values become a float32 copy: the kernels read float32, float16 and bfloat16.
    mutating func convertValuesToFloat() {
        let what: String
        if values.dtype == .float64 {
            what = "float64"
        } else if !values.dtype.isFloatingPoint {
            what = "\(sourceDtype) integers"
        } else {
            return
        }
        values = TensorChecks.float32Copy(values)
        resident += values.storage.byteCount
        valuesMap = nil
        warnings.append("\(valuesName ?? "values") are \(what); converted to a float32 copy")
    }

    /// Counts NaN, +∞ and −∞; refuses NaN and +∞ (and −∞ in probabilities) unless they are allowed.
    mutating func checkNonFinite(
        allowed: Bool, progress: ((Double) -> Void)?, isCancelled: (() -> Bool)?
    ) throws -> NonFiniteCounts {
        let scan = ScanProgress(total: values.storage.byteCount, progress: progress, isCancelled: isCancelled)
        let counts = try NonFiniteScanner.scan(values.storage, dtype: values.dtype, map: valuesMap, progress: scan)
        let refused = counts.nan + counts.posInf + (kind == .probs ? counts.negInf : 0)
        guard refused > 0 else { return counts }
        let what = "\(counts.nan) NaN, \(counts.posInf) +Infinity" + (kind == .probs ? ", \(counts.negInf) -Infinity" : "")
        guard allowed else {
            throw fileError(
                .nonFinite, path, tensor: valuesName,
                numbers: ["nan": counts.nan, "posInf": counts.posInf, "negInf": counts.negInf],
                "\(kind.rawValue) hold non-finite values: \(what) (set allowNonFinite to keep them)")
        }
        warnings.append("\(valuesName ?? kind.rawValue) hold non-finite values (\(what)); kept because allowNonFinite is set")
        return counts
    }

    /// Dense or top-k, and the vocabulary size: for top-k it must be given (option, file or
    /// vocabulary) and every index must lie below it, once per row; for dense outputs the
    /// values' width is the size.
    mutating func settleLayout(vocabSize: Int?) throws -> (ModelOutputs.Layout, Int) {
        let vocab: Int
        let layout: ModelOutputs.Layout
        if let indices {
            guard let v = vocabSize ?? self.vocab ?? vocabulary?.count else {
                throw fileError(
                    .malformedHeader, path,
                    "top-k outputs need the vocabulary size: give __metadata__.vocab_size, the vocabSize option or a vocabulary")
            }
            vocab = v
            try TensorChecks.checkIndices(indices, vocab: v, path: path, name: indicesName)
            try TensorChecks.checkDistinctIndices(indices, path: path, name: indicesName ?? "indices")
            layout = .topK(indices: indices, values: values)
        } else {
            vocab = values.shape[2]
            if let v = vocabSize ?? self.vocab, v != vocab {
                warnings.append("the vocabulary size \(v) differs from the \(vocab) dense outputs; using \(vocab)")
            }
            layout = .dense(values: values)
        }
        if let labels = vocabulary, labels.count != vocab {
            warnings.append("the vocabulary has \(labels.count) labels for \(vocab) outputs; missing labels read as <id N>")
        }
        return (layout, vocab)
    }

    /// One id per example, none twice; a duplicate names its line (JSON Lines) or its rows.
    func checkIds() throws {
        guard let ids else { return }
        let n = values.shape[0]
        guard ids.count == n else {
            throw fileError(
                .shapeMismatch, path, numbers: ["expected": n, "actual": ids.count], "there are \(ids.count) ids for \(n) examples")
        }
        var seen: [String: Int] = [:]
        for (i, id) in ids.enumerated() {
            if let first = seen[id] {
                if let lines = idLines {
                    throw fileError(
                        .duplicateId, path, line: lines[i], numbers: ["firstLine": lines[first]],
                        "id '\(id)' already appeared on line \(lines[first])")
                }
                throw fileError(
                    .duplicateId, path, numbers: ["row": i, "firstRow": first], "id '\(id)' appears at rows \(first) and \(i)")
            }
            seen[id] = i
        }
    }
}
