/// The fused KL pass over float32 "log-values" x (logits, log-probs, or
/// log of probabilities). A row's distribution at temperature τ is
/// softmax(x/τ); with M = max x and k = log2(e)/τ, the fused pass forms
/// u_i = x_i·k − fl(M·k) (≤ 0 up to one rounding; one FMA), e_i = 2^{u_i} and
/// S = Σ e_i, so log p_i = ln2·u_i − log S. Working with u keeps every
/// exponent ≤ 0, so the sums cannot overflow, and lets one pass collect
/// everything the KL family needs (see `KLSums`).

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
