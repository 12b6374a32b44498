/// S = Σ e^{(x_i − M)/τ}: the log-sum-exp pass for a single row
/// (log Σ e^{x/τ} = M/τ + log S).
@inline(__always)
func expSum(_ x: UnsafePointer<Float>, _ n: Int, max m: Float, invTau: Float) -> Double {
    let mv = KVec(repeating: m), iv = KVec(repeating: invTau)
    var d = 0.0
    let W = KVec.scalarCount
    let nFull = n & ~(W - 1)
    var i = 0
    while i < nFull {
        let end = Swift.min(i + kBlock, nFull)
        var a = KVec(), b = KVec()
        while i + 2 * W <= end {
            a += vexpNonPositive((loadK(x, i) - mv) * iv)
            b += vexpNonPositive((loadK(x, i + W) - mv) * iv)
            i += 2 * W
        }
        if i < end { a += vexpNonPositive((loadK(x, i) - mv) * iv); i += W }
        d += hsum(a) + hsum(b)
    }
    if i < n { d += hsum(vexpNonPositive((loadTailK(x, i, n, pad: -.infinity) - mv) * iv)) }
    return d
}

/// Σ (x_t,i/τ_t − x_s,i/τ_s)² over raw logits; positions where both are −inf
/// (the same masked vocabulary entry) contribute 0, one-sided −inf gives +inf.
@inline(__always)
func logitSquaredDifferenceSum(
    _ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ n: Int,
    invTauT: Float, invTauS: Float
) -> Double {
    let W = KVec.scalarCount
    let it = KVec(repeating: invTauT), iS = KVec(repeating: invTauS)
    var d = SIMD8<Double>()
    var i = 0
    let nFull = n & ~(W - 1)
    while i < nFull {
        let end = Swift.min(i + kBlock, nFull)
        var a = KVec()
        while i < end {
            let a1 = loadK(xt, i), b1 = loadK(xs, i)
            let diff = a1 * it - b1 * iS
            let sq = diff * diff
            a += sq.replacing(with: 0, where: (a1 .== -.infinity) .& (b1 .== -.infinity))
            i += W
        }
        d += widen(a)
    }
    while i < n {
        let a1 = xt[i], b1 = xs[i]
        if !(a1 == -.infinity && b1 == -.infinity) {
            let diff = Double(a1 * invTauT) - Double(b1 * invTauS)
            d[0] += diff * diff
        }
        i += 1
    }
    return d.sum()
}

/// Σ x_i over a float buffer: the "plain read" reference for bandwidth.
@inline(__always)
func plainSum(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
    // Four independent accumulators, flushed every 4096 elements (at most
    // 256 terms per lane).
    let W = KVec.scalarCount
    var d = SIMD8<Double>()
    var i = 0
    let nFull = n & ~(4 * W - 1)
    while i < nFull {
        let end = Swift.min(i + 4096, nFull)
        var a0 = KVec(), a1 = KVec(), a2 = KVec(), a3 = KVec()
        while i < end {
            a0 += loadK(x, i); a1 += loadK(x, i + W)
            a2 += loadK(x, i + 2 * W); a3 += loadK(x, i + 3 * W)
            i += 4 * W
        }
        d += widen(a0 + a1) + widen(a2 + a3)
    }
    while i < n { d[0] += Double(x[i]); i += 1 }
    return d.sum()
}
