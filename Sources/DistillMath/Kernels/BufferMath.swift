/// Pointer entry points to the vector `exp` for code outside the loss engine: the transformer
/// forward pass (DistillModels) uses them for its attention softmax, its activations (GELU's tanh,
/// SiLU) and the log-softmax over the vocabulary, where a per-element libm call would cost as
/// much as a matrix product.
///
/// Each is one non-inlined call per row, so the caller pays one call per few thousand elements.
extension VectorMath {
    /// out[i] = e^(x[i] − shift) for i < count, and returns Σ out[i].
    ///
    /// Precondition: x[i] − shift ≤ 0 (shift is the row's maximum), so the non-positive `exp` of the
    /// softmax kernels applies (2.6 ulp, on the float difference x[i] − shift). `out` may be `x`.
    /// The sum is taken in float lanes flushed into a Double every `flushEvery` vectors.
    public static func expShifted(
        _ x: UnsafePointer<Float>, count: Int, shift: Float, into out: UnsafeMutablePointer<Float>
    ) -> Double {
        let W = KVec.scalarCount
        let s = KVec(repeating: shift)
        var total = 0.0
        var acc = KVec(repeating: 0)
        var inBlock = 0
        var i = 0
        while i + W <= count {
            let e = vexpNonPositive(loadK(x, i) - s)
            storeK(out, i, e)
            acc += e
            inBlock += 1
            if inBlock == flushEvery {
                total += hsum(acc)
                acc = KVec(repeating: 0)
                inBlock = 0
            }
            i += W
        }
        total += hsum(acc)
        if i < count {
            let e = vexpNonPositive(loadTailK(x, i, count, pad: -.infinity) - s)
            var j = 0
            while i + j < count {
                out[i + j] = e[j]
                total += Double(e[j])
                j += 1
            }
        }
        return total
    }

    /// Σ e^(x[i] − shift) for i < count, without storing the terms (the log-sum-exp of a
    /// log-softmax). Same precondition and precision as `expShifted`.
    public static func sumExpShifted(_ x: UnsafePointer<Float>, count: Int, shift: Float) -> Double {
        let W = KVec.scalarCount
        let s = KVec(repeating: shift)
        var total = 0.0
        var acc = KVec(repeating: 0)
        var inBlock = 0
        var i = 0
        while i + W <= count {
            acc += vexpNonPositive(loadK(x, i) - s)
            inBlock += 1
            if inBlock == flushEvery {
                total += hsum(acc)
                acc = KVec(repeating: 0)
                inBlock = 0
            }
            i += W
        }
        total += hsum(acc)
        if i < count {
            let e = vexpNonPositive(loadTailK(x, i, count, pad: -.infinity) - s)
            var j = 0
            while i + j < count {
                total += Double(e[j])
                j += 1
            }
        }
        return total
    }

    /// out[i] = e^(x[i]) over the whole float range (see `vexp`: 0 below −87, +inf above 88.38,
    /// NaN for NaN). `out` may be `x`.
    public static func exp(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<Float>) {
        let W = KVec.scalarCount
        var i = 0
        while i + W <= count {
            storeK(out, i, vexp(loadK(x, i)))
            i += W
        }
        if i < count {
            let e = vexp(loadTailK(x, i, count, pad: 0))
            var j = 0
            while i + j < count {
                out[i + j] = e[j]
                j += 1
            }
        }
    }

    /// The largest of x[0..<count] (NaNs skipped; −inf for an empty row).
    public static func maximum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        let W = KVec.scalarCount
        var m = KVec(repeating: -.infinity)
        var i = 0
        // A compare and blend: `pointwiseMax` and `.max()` follow IEEE maximum's NaN rules
        // lane by lane and compile to scalar loops.
        while i + W <= count {
            let v = loadK(x, i)
            m = m.replacing(with: v, where: v .> m)
            i += W
        }
        var best = -Float.infinity
        for lane in 0..<W where m[lane] > best { best = m[lane] }
        while i < count {
            if x[i] > best { best = x[i] }
            i += 1
        }
        return best
    }
}
