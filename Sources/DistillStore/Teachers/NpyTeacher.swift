import DistillTensor

extension TeacherLoader {
    /// The parts of a `.npy` teacher: the values (what they are is the `kind` option), and
    /// the `.npy` files the `indices` and `mask` options name.
    static func npyParts(_ array: NpyArray, _ source: TeacherSource) throws -> TeacherParts {
        let path = source.path
        var warnings: [String] = []
        let kind = source.options.kind ?? .logits
        let isTopK = source.options.indices != nil
        let values = try TensorChecks.asThreeD(array.tensor, path: path, name: "values", what: isTopK ? "top-k values" : "dense values")
        let (n, t) = (values.shape[0], values.shape[1])
        var resident = array.mapped ? 0 : values.storage.byteCount
        var mapped = array.map.size
        var indices: Tensor?
        if let ipath = source.options.indices {
            let idx = try NpyArray(path: ipath)
            guard idx.tensor.dtype == .int32 || idx.tensor.dtype == .int64 else {
                throw fileError(.unsupportedDtype, ipath, "top-k indices must be <i4 or <i8, not \(idx.descr)")
            }
            let i3 = try TensorChecks.asThreeD(idx.tensor, path: ipath, name: "indices", what: "top-k values")
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
            mask = try TensorChecks.maskCopy(m.tensor, n: n, positions: t, path: mpath, name: "mask")
            resident += mask!.storage.byteCount
        }
        if !array.mapped { warnings.append("the data is not aligned to its element width; copied") }
        return TeacherParts(
            path: path, kind: kind, sourceDtype: array.descr, values: values, valuesName: nil,
            valuesMap: array.mapped ? array.map : nil, indices: indices, indicesName: nil, vocab: nil, mask: mask,
            ids: nil, idLines: nil, vocabulary: nil, warnings: warnings, resident: resident, mapped: mapped)
    }
}
