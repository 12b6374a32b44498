import CKernelSupport

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
