/// Loads, stores and lane reductions shared by the row kernels, on the
/// kernels' vector type `KVec` (Width.swift).
///
/// Precision: each float accumulator lane takes at most `flushEvery` vectors
/// before the lanes are summed (a float tree) into a Double accumulator, so
/// float rounding never builds up over more than 32 terms per lane; the
/// final combination is done in Double.
let flushEvery = 32

/// The lanes in eight Double lanes (the two halves added with AVX-512).
@inline(__always)
func widen(_ v: KVec) -> SIMD8<Double> {
    #if DISTILL_KERNELS_AVX512
        SIMD8<Double>(v.lowHalf) + SIMD8<Double>(v.highHalf)
    #else
        SIMD8<Double>(v)
    #endif
}

/// Elements per block: each float accumulator lane takes `flushEvery` terms
/// before it is added into a Double.
let kBlock = flushEvery * KVec.scalarCount

@inline(__always)
func loadK(_ p: UnsafePointer<Float>, _ i: Int) -> KVec {
    UnsafeRawPointer(p + i).loadUnaligned(as: KVec.self)
}

@inline(__always)
func storeK(_ p: UnsafeMutablePointer<Float>, _ i: Int, _ v: KVec) {
    UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: KVec.self)
}

@inline(__always)
func loadTailK(_ p: UnsafePointer<Float>, _ i: Int, _ n: Int, pad: Float) -> KVec {
    var v = KVec(repeating: pad)
    var j = 0
    while i + j < n { v[j] = p[i + j]; j += 1 }
    return v
}

/// Σ of the lanes: a float tree (one rounding per level on top of the
/// ≤ `flushEvery` terms already in each lane), then Double. Written with
/// halves because the generic Float → Double vector conversion is an
/// out-of-line per-lane call.
@inline(__always)
func hsum(_ v: KVec) -> Double {
    #if DISTILL_KERNELS_AVX512
        let h = v.lowHalf + v.highHalf
    #else
        let h = v
    #endif
    let q = h.lowHalf + h.highHalf
    let r = q.lowHalf + q.highHalf
    return Double(r[0]) + Double(r[1])
}

/// |v| lane-wise, by clearing the sign bits.
@inline(__always)
func vabs(_ v: KVec) -> KVec {
    unsafeBitCast(unsafeBitCast(v, to: KIVec.self) & KIVec(repeating: 0x7FFF_FFFF), to: KVec.self)
}

/// acc = max(acc, v) lane-wise, NaN in v skipped: one `vmaxps`.
@inline(__always)
func vmax(_ acc: inout KVec, _ v: KVec) { acc = acc.replacing(with: v, where: v .> acc) }

/// Largest lane (NaN lanes skipped); once per block, so a plain loop after
/// one halving step is enough.
@inline(__always)
func hmax(_ v: KVec) -> Float {
    let h = v.lowHalf.replacing(with: v.highHalf, where: v.highHalf .> v.lowHalf)
    var m = h[0]
    for l in 1..<h.scalarCount where h[l] > m { m = h[l] }
    return m
}
