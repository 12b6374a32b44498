import CKernelSupport

/// Per-row SIMD kernels over float32 "log-values" x (logits, log-probs, or
/// log of probabilities). A row's distribution at temperature τ is
/// softmax(x/τ); with M = max x and k = log2(e)/τ, the fused pass forms
/// u_i = x_i·k − fl(M·k) (≤ 0 up to one rounding; one FMA), e_i = 2^{u_i} and
/// S = Σ e_i, so log p_i = ln2·u_i − log S. Working with u keeps every
/// exponent ≤ 0, so the sums cannot overflow, and lets one pass collect
/// everything the KL family needs (see `KLSums`).
///
/// Precision: each float accumulator lane takes at most `flushEvery` vectors
/// before the lanes are summed (a float tree) into a Double accumulator, so
/// float rounding never builds up over more than 32 terms per lane; the
/// final combination is done in Double.

let flushEvery = 32

@inline(__always)
func widen(_ v: FloatVector) -> SIMD8<Double> {
    SIMD8<Double>(v.lowHalf) + SIMD8<Double>(v.highHalf)
}

@inline(__always)
func loadVector(_ p: UnsafePointer<Float>, _ i: Int) -> FloatVector {
    UnsafeRawPointer(p + i).loadUnaligned(as: FloatVector.self)
}

/// Loads the last `n - i` (< 16) elements, padding with `pad`.
@inline(__always)
func loadTail(_ p: UnsafePointer<Float>, _ i: Int, _ n: Int, pad: Float) -> FloatVector {
    var v = FloatVector(repeating: pad)
    var j = 0
    while i + j < n { v[j] = p[i + j]; j += 1 }
    return v
}

/// Result of the first pass over a row.
struct RowScan {
    /// Largest value (NaNs are skipped here and caught by the later sums).
    var max: Float
    /// First index holding `max`.
    var argmax: Int
}

/// Pass 1: max and first argmax in one streaming read.
@inline(__always)
func scanRow(_ x: UnsafePointer<Float>, _ n: Int) -> RowScan {
    var maxv = FloatVector(repeating: -.infinity)
    // Block number at which each lane last saw a strictly larger value, so
    // per lane we keep the first occurrence of its maximum.
    var blockv = IntVector(repeating: 0)
    var blk = IntVector(repeating: 0)
    let one = IntVector(repeating: 1)
    var i = 0
    while i + 16 <= n {
        let v = loadVector(x, i)
        let gt = v .> maxv
        maxv = maxv.replacing(with: v, where: gt)
        blockv = blockv.replacing(with: blk, where: gt)
        blk &+= one
        i += 16
    }
    var best: Float = -.infinity
    var bestIndex = Int.max
    for lane in 0..<16 where maxv[lane] != -.infinity {
        let idx = Int(blockv[lane]) * 16 + lane
        if maxv[lane] > best || (maxv[lane] == best && idx < bestIndex) {
            best = maxv[lane]
            bestIndex = idx
        }
    }
    while i < n {
        let v = x[i]
        if v > best { best = v; bestIndex = i }
        i += 1
    }
    if bestIndex == Int.max { bestIndex = 0 }
    return RowScan(max: best, argmax: bestIndex)
}

/// Everything the KL family needs from one fused pass. The pass works in
/// base 2: u_i = (x_i − M_t)·log2(e)/τ_t, v_i = (y_i − M_s)·log2(e)/τ_s,
/// e_i = 2^{u_i} = e^{(x_i − M_t)/τ_t}, f_i = 2^{v_i} (the exponent then needs
/// no range reduction, see `vexp2NonPositive`); A, B and W are in bits, and
/// ln 2 turns them into nats:
///
/// - H(p)    = log S_t − ln2·A/S_t,          A  = Σ e_i·u_i
/// - H(q)    = log S_s − ln2·B/S_s,          B  = Σ f_i·v_i
/// - KL(p‖q) = ln2·W_f/S_t − log S_t + log S_s, W_f = Σ e_i·(u_i − v_i)
/// - KL(q‖p) = ln2·W_r/S_s − log S_s + log S_t, W_r = Σ f_i·(v_i − u_i)
/// - CE(p,q) = H(p) + KL(p‖q)
///
/// W_f and W_r are accumulated directly (not as A − Σe·v) so that nearly equal
/// distributions do not lose precision to cancellation, and identical inputs
/// give W = 0 and S_t = S_s exactly, hence KL = 0 exactly.
struct KLSums {
    var st = 0.0, ss = 0.0, a = 0.0, b = 0.0, wf = 0.0, wr = 0.0
    /// The offsets the sums are relative to, in bits: u_i = x_i·k_t − refT
    /// exactly as the kernels formed it (k_t = fl(log2(e)/τ_t),
    /// refT = fl(M_t·k_t), one FMA per element instead of a subtract and a
    /// multiply). Every formula here is invariant to a
    /// common offset, so refT need not equal M_t/τ_t, only be the same for
    /// the whole row; the second passes must use it too.
    var refT: Float = 0, refS: Float = 0

    var isFinite: Bool { st.isFinite && ss.isFinite && !a.isNaN && !b.isNaN && !wf.isNaN && !wr.isNaN }
    var logSt: Double { dlog(st) }
    var logSs: Double { dlog(ss) }
    var teacherEntropy: Double { Swift.max(0, logSt - dLn2 * a / st) }
    var studentEntropy: Double { Swift.max(0, logSs - dLn2 * b / ss) }
    /// Clamped at 0: the true value is ≥ 0 and only rounding can go below.
    var forwardKL: Double { Swift.max(0, dLn2 * wf / st - logSt + logSs) }
    var reverseKL: Double { Swift.max(0, dLn2 * wr / ss - logSs + logSt) }
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

/// Float accumulators of one block.
struct KLBlockAcc {
    var st = KVec(), ss = KVec(), a = KVec()
    var b = KVec(), wf = KVec(), wrNeg = KVec()

    /// One vector of the fused pass. Without `guarded`, a lane with u = −inf
    /// (or v = −inf) makes `a` (or `b`) NaN through 0·(−inf); the caller then
    /// redoes the block guarded, where 0·log 0 counts as 0 and NaN stays NaN. `reverse` adds the
    /// Σ f·(u − v) sum only the reverse KL needs.
    ///
    /// The kernels pass literal Bools down through `@_transparent` functions,
    /// which are always inlined, so every combination folds to its own loop
    /// (`@inline(__always)` is not honoured once the caller grows large, and
    /// an out-of-line call splits SIMD values into 128-bit pieces).
    @_transparent
    mutating func step(_ u: KVec, _ v: KVec, guarded: Bool, reverse: Bool) -> (KVec, KVec) {
        let e = vexp2NonPositive(u)
        let f = vexp2NonPositive(v)
        let d = u - v
        if guarded {
            // Only terms that are 0·(−inf) or 0·(very negative) are set to
            // 0: a NaN input (whose 2^y is 0 when its sign bit is set, see
            // `vexp2NonPositive`) must stay NaN to be reported.
            let ez = (e .== 0) .& (u .== u), fz = (f .== 0) .& (v .== v)
            a = a.addingProduct(e, u.replacing(with: 0, where: ez))
            wf = wf.addingProduct(e, d.replacing(with: 0, where: ez))
            b = b.addingProduct(f, v.replacing(with: 0, where: fz))
            if reverse { wrNeg = wrNeg.addingProduct(f, d.replacing(with: 0, where: fz)) }
        } else {
            a = a.addingProduct(e, u)
            wf = wf.addingProduct(e, d)
            b = b.addingProduct(f, v)
            if reverse { wrNeg = wrNeg.addingProduct(f, d) }
        }
        st += e
        ss += f
        return (e, f)
    }
}

/// Per-row scratch for the losses that need p and q again after the fused
/// pass: e_i, f_i as computed there and, per block, the offsets r_blk they
/// were taken against, in bits (so p_i = e_i·2^{r_blk − r}/S_t, r the row's
/// final offset; −inf marks an all −inf prefix).
struct ExpStore {
    let e: UnsafeMutablePointer<Float>
    let f: UnsafeMutablePointer<Float>
    let blockMaxT: UnsafeMutablePointer<Float>
    let blockMaxS: UnsafeMutablePointer<Float>

    static func blocks(_ n: Int) -> Int { n / kBlock + 2 }
}

/// Maxima of one block of both sides, four independent chains per side so
/// the scan is not bound by `vmaxps` latency. NaNs are skipped (`v > acc` is
/// false), so each select compiles to a single `vmaxps`; the loss sums catch
/// them later.
@inline(__always)
func blockMax2(_ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ i: Int, _ end: Int) -> (Float, Float) {
    let W = KVec.scalarCount
    let ninf = KVec(repeating: -.infinity)
    var t0 = ninf, t1 = ninf, t2 = ninf, t3 = ninf
    var s0 = ninf, s1 = ninf, s2 = ninf, s3 = ninf
    var j = i
    while j + 4 * W <= end {
        vmax(&t0, loadK(xt, j)); vmax(&t1, loadK(xt, j + W))
        vmax(&t2, loadK(xt, j + 2 * W)); vmax(&t3, loadK(xt, j + 3 * W))
        vmax(&s0, loadK(xs, j)); vmax(&s1, loadK(xs, j + W))
        vmax(&s2, loadK(xs, j + 2 * W)); vmax(&s3, loadK(xs, j + 3 * W))
        j += 4 * W
    }
    while j < end {
        vmax(&t0, loadK(xt, j)); vmax(&s0, loadK(xs, j))
        j += W
    }
    vmax(&t0, t1); vmax(&t2, t3); vmax(&t0, t2)
    vmax(&s0, s1); vmax(&s2, s3); vmax(&s0, s2)
    return (hmax(t0), hmax(s0))
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

/// First index in [i, end) holding m (the block is known to contain it).
@inline(__always)
func firstIndex(of m: Float, _ x: UnsafePointer<Float>, _ i: Int, _ end: Int) -> Int {
    var j = i
    while j < end { if x[j] == m { return j }; j += 1 }
    return i
}

/// The fused pass over one block [i, end) against the offsets (refT, refS),
/// and, with `scanNext`, the maxima of the next block [end, end + (end − i)):
/// loading the next block while this one's exponentials are computed keeps
/// memory busy during the arithmetic, instead of stalling on it in a
/// separate scan (the hardware prefetcher alone does not run far enough
/// ahead). With `store`, e_i and f_i are written out.
///
/// Takes scalars and returns the next block's maxima as scalars: SIMD values
/// crossing a call that is not inlined are split into 128-bit pieces.
@inline(__always)
func klBlock(
    _ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ i: Int, _ end: Int,
    refT: Float, refS: Float, scaleT: Float, scaleS: Float, store: ExpStore?,
    guarded: Bool, reverse: Bool, scanNext: Bool
) -> (acc: KLBlockAcc, nextT: Float, nextS: Float) {
    var acc = KLBlockAcc()
    let W = KVec.scalarCount
    let len = end - i
    let nt = KVec(repeating: -refT), ns = KVec(repeating: -refS)
    let it = KVec(repeating: scaleT), iS = KVec(repeating: scaleS)
    var nextT = KVec(repeating: -.infinity), nextS = nextT
    var j = i
    while j < end {
        let (e, f) = acc.step(
            nt.addingProduct(loadK(xt, j), it), ns.addingProduct(loadK(xs, j), iS), guarded: guarded, reverse: reverse)
        if let st = store { storeK(st.e, j, e); storeK(st.f, j, f) }
        if scanNext { vmax(&nextT, loadK(xt, j + len)); vmax(&nextS, loadK(xs, j + len)) }
        j += W
    }
    return scanNext ? (acc, hmax(nextT), hmax(nextS)) : (acc, -.infinity, -.infinity)
}

/// The rare cases of `klBlock` (a guarded redo, the last block), with
/// run-time flags.
@inline(never)
func klBlockOther(
    _ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ i: Int, _ end: Int,
    _ rT: Float, _ rS: Float, _ k2T: Float, _ k2S: Float, _ store: ExpStore?, guarded: Bool, reverse: Bool
) -> KLBlockAcc {
    klBlock(
        xt, xs, i, end, refT: rT, refS: rS, scaleT: k2T, scaleS: k2S, store: store,
        guarded: guarded, reverse: reverse, scanNext: false
    ).acc
}

/// Fused single streaming pass for the KL family ("online softmax"): each
/// block of `kBlock` values is exponentiated against the running max, which
/// includes that block's own max, scanned while the previous block was
/// computed (see `klBlock`). When the running offset rises by δ the Double
/// sums are rescaled exactly: S' = c·S, A' = c·(A − δ·S),
/// W_f' = c_t·(W_f − (δ_t − δ_s)·S_t), with c = 2^{−δ}; so memory is read
/// once per row. Returns the sums relative to the final offsets
/// (`KLSums.refT`, `refS`) and both row scans.
///
/// The argmax is not tracked per lane: only the block where the running max
/// last rose is remembered and searched once at the end.
///
/// With `store`, e_i and f_i of the full vectors are written out, and each
/// block's offsets (see `ExpStore`), for the second pass of the mixture and
/// difference losses. `reverse` also accumulates W_r (only the reverse KL
/// reads it).
func klFused(
    _ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ n: Int,
    scaleT: Float, scaleS: Float, store: ExpStore?, reverse: Bool
) -> (KLSums, RowScan, RowScan) {
    if let st = store {
        return reverse ? klFusedStoreReverse(xt, xs, n, scaleT, scaleS, st) : klFusedStore(xt, xs, n, scaleT, scaleS, st)
    }
    return reverse ? klFusedReverse(xt, xs, n, scaleT, scaleS) : klFusedPlain(xt, xs, n, scaleT, scaleS)
}

// One function per combination, each inlining the core with literal flags:
// four moderate functions optimise better than one holding all four loops.
@inline(never)
func klFusedPlain(_ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ n: Int, _ k2T: Float, _ k2S: Float)
    -> (KLSums, RowScan, RowScan)
{ klFusedCore(xt, xs, n, k2T, k2S, nil, reverse: false) }

@inline(never)
func klFusedReverse(_ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ n: Int, _ k2T: Float, _ k2S: Float)
    -> (KLSums, RowScan, RowScan)
{ klFusedCore(xt, xs, n, k2T, k2S, nil, reverse: true) }

@inline(never)
func klFusedStore(
    _ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ n: Int, _ k2T: Float, _ k2S: Float, _ st: ExpStore
) -> (KLSums, RowScan, RowScan) { klFusedCore(xt, xs, n, k2T, k2S, st, reverse: false) }

@inline(never)
func klFusedStoreReverse(
    _ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ n: Int, _ k2T: Float, _ k2S: Float, _ st: ExpStore
) -> (KLSums, RowScan, RowScan) { klFusedCore(xt, xs, n, k2T, k2S, st, reverse: true) }

@inline(__always)
func klFusedCore(
    _ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ n: Int,
    _ scaleT: Float, _ scaleS: Float, _ store: ExpStore?, reverse: Bool
) -> (KLSums, RowScan, RowScan) {
    // Running maxima of the raw values, and the offsets fl(max/τ) (0 while
    // every value so far is −inf, whose exponentials are 0 anyway).
    var mT = -Float.infinity, mS = -Float.infinity
    var rT: Float = 0, rS: Float = 0
    var blkT = -1, blkS = -1
    var dSt = 0.0, dSs = 0.0, dA = 0.0, dB = 0.0, dWf = 0.0, dWr = 0.0
    let W = KVec.scalarCount
    let nFull = n & ~(W - 1)
    var i = 0

    @inline(__always)
    func raise(_ newT: Float, _ newS: Float) {
        // Sums so far were taken relative to (rT, rS); move them to the new
        // offsets. Both shifts are applied at once, so that W_f and W_r see
        // δ_t − δ_s, which is exactly 0 for identical inputs.
        var dt = 0.0, ds = 0.0
        if newT > mT {
            let r = newT * scaleT
            if mT != -.infinity { dt = Double(r) - Double(rT) }
            mT = newT; rT = r
        }
        if newS > mS {
            let r = newS * scaleS
            if mS != -.infinity { ds = Double(r) - Double(rS) }
            mS = newS; rS = r
        }
        if dt == 0 && ds == 0 { return }
        let ct = dt == 0 ? 1 : dexp2(-dt), cs = ds == 0 ? 1 : dexp2(-ds)
        dA = ct * (dA - dt * dSt)
        dB = cs * (dB - ds * dSs)
        dWf = ct * (dWf - (dt - ds) * dSt)
        dWr = cs * (dWr - (ds - dt) * dSs)
        dSt *= ct
        dSs *= cs
    }

    @inline(__always)
    func flush(_ acc: KLBlockAcc) {
        dSt += hsum(acc.st); dSs += hsum(acc.ss); dA += hsum(acc.a)
        dB += hsum(acc.b); dWf += hsum(acc.wf)
        if reverse { dWr -= hsum(acc.wrNeg) }
    }

    var blockNo = 0
    var (bmT, bmS) = blockMax2(xt, xs, 0, Swift.min(kBlock, nFull))
    while i < nFull {
        let end = Swift.min(i + kBlock, nFull)
        if bmT > mT { blkT = i }
        if bmS > mS { blkS = i }
        raise(bmT, bmS)
        if let st = store {
            st.blockMaxT[blockNo] = mT == -.infinity ? -.infinity : rT
            st.blockMaxS[blockNo] = mS == -.infinity ? -.infinity : rS
        }
        var acc: KLBlockAcc
        if end + (end - i) <= nFull {
            // The hot loop, written out here rather than called: past a size
            // limit the optimiser stops inlining into this function, and an
            // out-of-line loop with run-time flags is half as fast. The rare
            // cases (guarded redo, last block) go to `klBlockOther`.
            acc = KLBlockAcc()
            let len = end - i
            let nt = KVec(repeating: -rT), ns = KVec(repeating: -rS)
            let it = KVec(repeating: scaleT), iS = KVec(repeating: scaleS)
            var nextT = KVec(repeating: -.infinity), nextS = nextT
            var j = i
            while j < end {
                let (e, f) = acc.step(
                    nt.addingProduct(loadK(xt, j), it), ns.addingProduct(loadK(xs, j), iS), guarded: false,
                    reverse: reverse)
                if let st = store { storeK(st.e, j, e); storeK(st.f, j, f) }
                vmax(&nextT, loadK(xt, j + len)); vmax(&nextS, loadK(xs, j + len))
                j += W
            }
            bmT = hmax(nextT); bmS = hmax(nextS)
        } else {
            acc = klBlockOther(xt, xs, i, end, rT, rS, scaleT, scaleS, store, guarded: false, reverse: reverse)
            (bmT, bmS) = blockMax2(xt, xs, end, Swift.min(end + kBlock, nFull))
        }
        // 0·(−inf) made a or b NaN: some u or v is −inf. Redo the block with
        // the guards (genuine NaN inputs stay NaN and are reported later).
        if (acc.a + acc.b).sum().isNaN {
            acc = klBlockOther(xt, xs, i, end, rT, rS, scaleT, scaleS, store, guarded: true, reverse: reverse)
        }
        flush(acc)
        i = end
        blockNo += 1
    }
    let scanT = finishScan(xt, blk: blkT, max: mT, i, n)
    let scanS = finishScan(xs, blk: blkS, max: mS, i, n)
    if i < n {
        raise(scanT.max, scanS.max)
        var acc = KLBlockAcc()
        let u = KVec(repeating: -rT).addingProduct(loadTailK(xt, i, n, pad: -.infinity), KVec(repeating: scaleT))
        let v = KVec(repeating: -rS).addingProduct(loadTailK(xs, i, n, pad: -.infinity), KVec(repeating: scaleS))
        _ = acc.step(u, v, guarded: true, reverse: true)
        dSt += hsum(acc.st); dSs += hsum(acc.ss); dA += hsum(acc.a)
        dB += hsum(acc.b); dWf += hsum(acc.wf); dWr -= hsum(acc.wrNeg)
    }
    let sums = KLSums(st: dSt, ss: dSs, a: dA, b: dB, wf: dWf, wr: dWr, refT: rT, refS: rS)
    return (sums, scanT, scanS)
}

/// Row scan from the block maxima plus the scalar tail [i, n): the argmax is
/// the first index of the max inside the block where it first appeared,
/// unless the tail holds a strictly larger value.
@inline(__always)
func finishScan(_ x: UnsafePointer<Float>, blk: Int, max m: Float, _ i: Int, _ n: Int) -> RowScan {
    var best = m
    var bestIndex = blk >= 0 ? firstIndex(of: m, x, blk, Swift.min(blk + kBlock, i)) : 0
    var k = i
    while k < n {
        let v = x[k]
        if v > best { best = v; bestIndex = k }
        k += 1
    }
    return RowScan(max: best, argmax: bestIndex)
}

/// 2^{r_blk − r}: how a block's stored exponentials relate to the row's
/// final offset. 1 for every block after the one holding the maximum (no
/// libm call there: this runs once per block), 0 for an all −inf prefix.
@inline(__always)
func blockGain(_ rBlk: Float, _ r: Float) -> Double {
    if rBlk == r { return 1 }
    if rBlk == -.infinity { return 0 }
    return dexp2(Double(rBlk) - Double(r))
}

/// Float scale turning the stored e_i of a block into p_i:
/// 2^{r_blk − r}/S, from the block's offset and the row's final one (0 for
/// an all −inf prefix, whose e_i are 0 anyway).
@inline(__always)
func blockScale(_ rBlk: Float, _ r: Float, invS: Double) -> Float {
    Float(blockGain(rBlk, r) * invS)
}

/// 2^{y − log2 S} with y = x·scale − r, for the last n − i (< one vector)
/// elements, padded with 0: p or q at the fused pass's offset. log2 S goes in
/// as two floats, so its rounding does not bias the tail.
@inline(__always)
func tailProbabilities(_ x: UnsafePointer<Float>, _ i: Int, _ n: Int, scale: Float, ref: Float, logS: Double) -> KVec {
    let y = KVec(repeating: -ref).addingProduct(loadTailK(x, i, n, pad: -.infinity), KVec(repeating: scale))
    let l = logS * dLog2e
    let hi = Float(l), lo = Float(l - Double(hi))
    return vexp2NonPositive((y - KVec(repeating: hi)) - KVec(repeating: lo))
}

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

/// The raw row a worker scores next, which the second passes below
/// prefetch as they go, one cache line per side per vector. They work from
/// cache, so without it the memory stream would idle through them and start
/// cold at the next row (measured: the mixture losses went from 1.9x to
/// about 1.7x forward KL's time at V = 32,000).
struct RowPrefetch {
    let t: UnsafeRawPointer
    let s: UnsafeRawPointer
    /// log2 of each side's bytes per element.
    let tShift: Int
    let sShift: Int

    /// No next row: the rows being scored, which are in cache already.
    static func none(_ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>) -> RowPrefetch {
        RowPrefetch(t: UnsafeRawPointer(xt), s: UnsafeRawPointer(xs), tShift: 2, sShift: 2)
    }

    @inline(__always)
    func touch(_ i: Int) {
        distill_prefetch(t + (i &<< tShift))
        distill_prefetch(s + (i &<< sShift))
    }
}

/// Pass 2 for the mixture losses, m = w·p + (1−w)·q: returns
/// (KL(p‖m), KL(q‖m)) = (Σ p_i log(p_i/m_i), Σ q_i log(q_i/m_i)).
///
/// One log per element serves both sums. Like `klFused` it works in base 2:
/// with m̃_i = S_t·m_i,
///
///     log2(p_i/m_i) = y_i − log2 m̃_i,    log2(q_i/m_i) = z_i + D − log2 m̃_i,
///
/// where y_i = x_t,i·log2(e)/τ_t − r_t and z_i = x_s,i·log2(e)/τ_s − r_s are
/// recomputed from the logits (one FMA each, at the row's final offsets) and
/// D = log2 S_t − log2 S_s; the sums are turned into nats at the end. m̃_i
/// comes from the exponentials stored by `klFused`:
/// m̃_i = e_i·(w·2^{r_blk,t − r_t}) + f_i·((1−w)·2^{r_blk,s − r_s}·S_t/S_s).
///
/// Accuracy: every term is a difference formed per element, so what is
/// summed is p_i·log(p_i/m_i), which is small wherever p ≈ q. Forming
/// −H(p) − Σ p log m instead subtracts two sums as large as the entropy (≈ 10
/// for a flat row of 32k outputs) and loses ~1e-6 to float rounding. The
/// constant D is carried in two float parts so it adds no rounding of its own.
///
/// Where a logit is −inf the term is 0·(−inf) = NaN; such a block is redone
/// with the 0·log 0 = 0 guards, as in `klFused`.
///
/// Where w or 1−w is below 1e-6 a float m̃_i can underflow where the true
/// ratio matters, so the rare extreme weights take the scalar Double loop.
@inline(__always)
func mixtureSums(
    _ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ n: Int,
    scaleT: Float, scaleS: Float, sums: KLSums, w: Double, store: ExpStore, next: RowPrefetch
) -> (Double, Double) {
    Swift.min(w, 1 - w) < 1e-6
        ? mixtureSumsScalar(xt, xs, n, scaleT: scaleT, scaleS: scaleS, sums: sums, w: w, store: store)
        : mixtureSumsVector(xt, xs, n, scaleT: scaleT, scaleS: scaleS, sums: sums, w: w, store: store, next: next)
}

/// Σ e_i·(y_i − log2 m̃_i) and Σ f_i·(z_i − log2 m̃_i) over [i, end) (see
/// `mixtureSums`); `guarded` makes the terms with e_i = 0 (f_i = 0) exactly 0.
@inline(__always)
func mixtureBlock(
    _ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ e: UnsafePointer<Float>, _ f: UnsafePointer<Float>,
    _ i0: Int, _ end: Int, it: KVec, nrT: KVec, iS: KVec, ncHi: KVec, aT: KVec, aS: KVec, guarded: Bool,
    next: RowPrefetch
) -> (KVec, KVec) {
    var aP = KVec(), aQ = KVec()
    var i = i0
    while i < end {
        next.touch(i)
        let ev = loadK(e, i), fv = loadK(f, i)
        let u = nrT.addingProduct(loadK(xt, i), it)
        let v = ncHi.addingProduct(loadK(xs, i), iS)
        // vlog2Finite(0) is finite (−127), so a lane with e_i = f_i = 0 adds 0.
        let lm = vlog2Finite((ev * aT).addingProduct(fv, aS))
        if guarded {
            aP = aP.addingProduct(ev, (u - lm).replacing(with: 0, where: ev .== 0))
            aQ = aQ.addingProduct(fv, (v - lm).replacing(with: 0, where: fv .== 0))
        } else {
            aP = aP.addingProduct(ev, u - lm)
            aQ = aQ.addingProduct(fv, v - lm)
        }
        i += KVec.scalarCount
    }
    return (aP, aQ)
}

@inline(never)
func mixtureSumsVector(
    _ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ n: Int,
    scaleT: Float, scaleS: Float, sums: KLSums, w: Double, store: ExpStore, next: RowPrefetch
) -> (Double, Double) {
    let W = KVec.scalarCount
    let invSt = 1 / sums.st, invSs = 1 / sums.ss
    var dP = 0.0, dQ = 0.0
    let nFull = n & ~(W - 1)
    // z_i + D = x_s,i·log2(e)/τ_s − (r_s − D), the constant split into two
    // floats; the small part is applied once, to the sum.
    let c = Double(sums.refS) - (sums.logSt - sums.logSs) * dLog2e
    let cHi = Float(c), cLo = Float(c - Double(cHi))
    let it = KVec(repeating: scaleT), iS = KVec(repeating: scaleS)
    let nrT = KVec(repeating: -sums.refT), ncHi = KVec(repeating: -cHi)
    let ratio = sums.st / sums.ss
    var i = 0
    var blockNo = 0
    var tailQ = 0.0
    while i < nFull {
        let end = Swift.min(i + kBlock, nFull)
        let bT = store.blockMaxT[blockNo], bS = store.blockMaxS[blockNo]
        let gT = blockGain(bT, sums.refT), gS = blockGain(bS, sums.refS)
        let aT = KVec(repeating: Float(w * gT)), aS = KVec(repeating: Float((1 - w) * gS * ratio))
        var (aP, aQ) = mixtureBlock(
            xt, xs, store.e, store.f, i, end, it: it, nrT: nrT, iS: iS, ncHi: ncHi, aT: aT, aS: aS, guarded: false,
            next: next)
        var sP = hsum(aP), sQ = hsum(aQ)
        if (sP + sQ).isNaN {
            (aP, aQ) = mixtureBlockGuarded(
                xt, xs, store.e, store.f, i, end, it: it, nrT: nrT, iS: iS, ncHi: ncHi, aT: aT, aS: aS, next: next)
            sP = hsum(aP); sQ = hsum(aQ)
        }
        // p_i = e_i·g_t/S_t and q_i = f_i·g_s/S_s; the sums are in bits.
        dP += gT * invSt * sP
        dQ += gS * invSs * sQ
        i = end
        blockNo += 1
    }
    var tP = 0.0, tQ = 0.0
    if i < n {
        let p = tailProbabilities(xt, i, n, scale: scaleT, ref: sums.refT, logS: sums.logSt)
        let q = tailProbabilities(xs, i, n, scale: scaleS, ref: sums.refS, logS: sums.logSs)
        (tP, tQ) = mixtureTerms(p, q, w)
        tailQ = hsum(q)
    }
    // The blocks' terms used z_i + D + cLo; take cLo off their q mass.
    dQ -= Double(cLo) * (1 - tailQ)
    return (Swift.max(0, dLn2 * dP + tP), Swift.max(0, dLn2 * dQ + tQ))
}

@inline(never)
func mixtureBlockGuarded(
    _ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ e: UnsafePointer<Float>, _ f: UnsafePointer<Float>,
    _ i0: Int, _ end: Int, it: KVec, nrT: KVec, iS: KVec, ncHi: KVec, aT: KVec, aS: KVec, next: RowPrefetch
) -> (KVec, KVec) {
    mixtureBlock(xt, xs, e, f, i0, end, it: it, nrT: nrT, iS: iS, ncHi: ncHi, aT: aT, aS: aS, guarded: true, next: next)
}

@inline(never)
func mixtureSumsScalar(
    _ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ n: Int,
    scaleT: Float, scaleS: Float, sums: KLSums, w: Double, store: ExpStore
) -> (Double, Double) {
    let W = KVec.scalarCount
    let invSt = 1 / sums.st, invSs = 1 / sums.ss
    var dP = 0.0, dQ = 0.0
    let nFull = n & ~(W - 1)
    var i = 0
    var blockNo = 0
    while i < nFull {
        let end = Swift.min(i + kBlock, nFull)
        let cT = Double(blockScale(store.blockMaxT[blockNo], sums.refT, invS: invSt))
        let cS = Double(blockScale(store.blockMaxS[blockNo], sums.refS, invS: invSs))
        while i < end {
            let (tp, tq) = mixtureTerms(
                loadK(store.e, i) * KVec(repeating: Float(cT)), loadK(store.f, i) * KVec(repeating: Float(cS)), w)
            dP += tp
            dQ += tq
            i += W
        }
        blockNo += 1
    }
    if i < n {
        let p = tailProbabilities(xt, i, n, scale: scaleT, ref: sums.refT, logS: sums.logSt)
        let q = tailProbabilities(xs, i, n, scale: scaleS, ref: sums.refS, logS: sums.logSs)
        let (tp, tq) = mixtureTerms(p, q, w)
        dP += tp
        dQ += tq
    }
    return (Swift.max(0, dP), Swift.max(0, dQ))
}

/// (Σ p_i log(p_i/m_i), Σ q_i log(q_i/m_i)) over one vector's lanes, in
/// Double, with m_i = w·p_i + (1−w)·q_i and 0·log 0 = 0.
@inline(__always)
func mixtureTerms(_ p: KVec, _ q: KVec, _ w: Double) -> (Double, Double) {
    var tp = 0.0, tq = 0.0
    for l in 0..<KVec.scalarCount {
        let pl = Double(p[l]), ql = Double(q[l])
        let m = w * pl + (1 - w) * ql
        if pl > 0 { tp += pl * dlog(pl / m) }
        if ql > 0 { tq += ql * dlog(ql / m) }
    }
    return (tp, tq)
}

/// Σ|e_i·k_t − f_i·k_s| and Σ(e_i·k_t − f_i·k_s)² over [i, end), float
/// lanes summed into Doubles; one of k_t, k_s is 1 (see `differenceSums`), so
/// identical inputs give exactly 0. Its own function: written inline, the
/// splat of the run-time factors made the optimiser re-vectorise the loop into
/// 128-bit pieces and permutes.
@inline(never)
func differenceBlock(
    _ e: UnsafePointer<Float>, _ f: UnsafePointer<Float>, _ i0: Int, _ end: Int, _ kT: Float, _ kS: Float,
    next: RowPrefetch
) -> (Double, Double) {
    let t = KVec(repeating: kT), ns = KVec(repeating: -kS)
    var aA = KVec(), aS = KVec()
    var i = i0
    while i < end {
        next.touch(i)
        let diff = (loadK(e, i) * t).addingProduct(loadK(f, i), ns)
        aA += vabs(diff)
        aS = aS.addingProduct(diff, diff)
        i += KVec.scalarCount
    }
    return (hsum(aA), hsum(aS))
}

/// Pass 2 for TVD and prob-MSE: (Σ|p_i − q_i|, Σ(p_i − q_i)²), with p and q
/// from the exponentials stored by `klFused`.
@inline(never)
func differenceSums(
    _ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ n: Int,
    scaleT: Float, scaleS: Float, sums: KLSums, store: ExpStore, next: RowPrefetch
) -> (Double, Double) {
    var dA = 0.0, dS = 0.0
    let W = KVec.scalarCount
    let invSt = 1 / sums.st, invSs = 1 / sums.ss
    var i = 0
    var blockNo = 0
    let nFull = n & ~(W - 1)
    while i < nFull {
        let end = Swift.min(i + kBlock, nFull)
        // p_i − q_i = e_i·c_t − f_i·c_s = c·(e_i·(c_t/c) − f_i·(c_s/c)), c the larger scale.
        let cT = Double(blockScale(store.blockMaxT[blockNo], sums.refT, invS: invSt))
        let cS = Double(blockScale(store.blockMaxS[blockNo], sums.refS, invS: invSs))
        let c = Swift.max(cT, cS)
        let (aA, aS) =
            c > 0
            ? differenceBlock(store.e, store.f, i, end, Float(cT / c), Float(cS / c), next: next) : (0, 0)
        i = end
        dA += c * aA; dS += c * c * aS
        blockNo += 1
    }
    if i < n {
        let p = tailProbabilities(xt, i, n, scale: scaleT, ref: sums.refT, logS: sums.logSt)
        let q = tailProbabilities(xs, i, n, scale: scaleS, ref: sums.refS, logS: sums.logSs)
        let diff = p - q
        dA += hsum(diff.replacing(with: -diff, where: diff .< 0))
        dS += hsum(diff * diff)
    }
    return (dA, dS)
}

/// Σ (x_t,i/τ_t − x_s,i/τ_s)² over raw logits; positions where both are −inf
/// (the same masked vocabulary entry) contribute 0, one-sided −inf gives +inf.
@inline(__always)
func logitSquaredDifferenceSum(
    _ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ n: Int,
    invTauT: Float, invTauS: Float
) -> Double {
    let it = FloatVector(repeating: invTauT), iS = FloatVector(repeating: invTauS)
    var d = SIMD8<Double>()
    var i = 0
    let nFull = n & ~15
    while i < nFull {
        let end = Swift.min(i + flushEvery * 16, nFull)
        var a = FloatVector()
        while i < end {
            let a1 = loadVector(xt, i), b1 = loadVector(xs, i)
            let diff = a1 * it - b1 * iS
            let sq = diff * diff
            a += sq.replacing(with: 0, where: (a1 .== -.infinity) .& (b1 .== -.infinity))
            i += 16
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
    var d = SIMD8<Double>()
    var i = 0
    let nFull = n & ~63
    while i < nFull {
        let end = Swift.min(i + 4096, nFull)
        var a0 = FloatVector(), a1 = FloatVector(), a2 = FloatVector(), a3 = FloatVector()
        while i < end {
            a0 += loadVector(x, i); a1 += loadVector(x, i + 16)
            a2 += loadVector(x, i + 32); a3 += loadVector(x, i + 48)
            i += 64
        }
        d += widen(a0 + a1) + widen(a2 + a3)
    }
    while i < n { d[0] += Double(x[i]); i += 1 }
    return d.sum()
}
