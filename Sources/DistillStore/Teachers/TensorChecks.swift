import DistillTensor

/// Checks and conversions on the tensors a teacher file holds, shared by the format readers.
enum TensorChecks {
    /// A float32 copy of float64 or integer values.
    static func float32Copy(_ t: Tensor) -> Tensor {
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
        let index: (Int) -> Int64 =
            t.dtype == .int32
            ? { Int64(base.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
            : { base.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self) }
        var row = [Int64](repeating: 0, count: k)
        for r in 0..<rows {
            for j in 0..<k { row[j] = index(r * k + j) }
            row.sort()
            for j in 1..<k where row[j] == row[j - 1] {
                let (example, position) = (r / positions, r % positions)
                let slots = (0..<k).filter { index(r * k + $0) == row[j] }
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
            let at = Tensor.coordinates(ofElement: first, in: t.shape).map { "[\($0)]" }.joined()
            throw fileError(
                .indexOutOfRange, path, tensor: name,
                numbers: ["count": bad, "first": first, "value": Int(firstValue), "vocab": vocab],
                "\(bad) top-k indices lie outside [0, \(vocab)); the first is \(firstValue) at \(at)")
        }
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
}
