import DistillJSON
import DistillTensor

extension TeacherLoader {
    /// The parts of a safetensors teacher: the value tensor the `kind` option (or the file)
    /// picks, top-k indices, a mask or lengths, and `__metadata__`'s ids, vocabulary and size.
    static func safetensorsParts(_ file: SafetensorsFile, _ source: TeacherSource) throws -> TeacherParts {
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
        let values = try TensorChecks.asThreeD(raw, path: path, name: valuesName, what: isTopK ? "top-k values" : "dense values")
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
            let idx = try TensorChecks.asThreeD(rawIdx, path: path, name: "topk_indices", what: "top-k values")
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
            mask = try TensorChecks.maskCopy(m, n: n, positions: t, path: path, name: "mask")
            if file.entries["lengths"] != nil { warnings.append("both mask and lengths are present; using mask") }
        } else if file.entries["lengths"] != nil {
            let (l, _) = try file.tensor("lengths")
            mask = try TensorChecks.maskFromLengths(l, n: n, positions: t, path: path, name: "lengths")
        }
        resident += mask?.storage.byteCount ?? 0
        var used: Set<String> = [valuesName, "topk_indices", "mask", "lengths"]
        // teacher/export's own extras (the tail mass and the target ids), read by training loops.
        if file.metadata["format"] == "distilld-topk/1" { used.formUnion(["tail_mass", "targets"]) }
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
        return TeacherParts(
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
}

extension String {
    /// Without leading and trailing white space (metadata values are written by hand as often as not).
    fileprivate var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
