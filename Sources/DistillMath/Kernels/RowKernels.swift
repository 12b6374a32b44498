/// Per-row SIMD kernels over float32 "log-values" x (logits, log-probs, or
/// log of probabilities). A row's distribution at temperature τ is
/// softmax(x/τ); with M = max x, u_i = (x_i − M)/τ ≤ 0 and S = Σ e^{u_i},
/// log p_i = u_i − log S. Working with u keeps every exp argument ≤ 0, so the
/// sums cannot overflow, and lets one pass collect everything the KL family
/// needs (see `KLSums`).
///
/// Precision: each 16-lane float accumulator takes at most `flushEvery`
/// vectors before it is added into a Double accumulator, so float rounding
/// never builds up over more than 32 terms per lane; the final combination is
/// done in Double.

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
    /// Smallest value; −inf means the row has masked-out entries and the
    /// kernels must guard 0·(−inf).
    var min: Float
    var hasNegInf: Bool { min == -.infinity }
}

/// Pass 1: max, first argmax and min in one streaming read.
@inline(__always)
func scanRow(_ x: UnsafePointer<Float>, _ n: Int) -> RowScan {
    var maxv = FloatVector(repeating: -.infinity)
    var minv = FloatVector(repeating: .infinity)
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
        minv = minv.replacing(with: v, where: v .< minv)
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
    var mn = minv.min()
    while i < n {
        let v = x[i]
        if v > best { best = v; bestIndex = i }
        if v < mn { mn = v }
        i += 1
    }
    if bestIndex == Int.max { bestIndex = 0 }
    return RowScan(max: best, argmax: bestIndex, min: mn)
}

/// Everything the KL family needs from one fused pass, with
/// u_i = (x_i − M_t)/τ_t, v_i = (y_i − M_s)/τ_s, e_i = e^{u_i}, f_i = e^{v_i}:
///
/// - H(p)    = log S_t − A/S_t,          A  = Σ e_i·u_i
/// - H(q)    = log S_s − B/S_s,          B  = Σ f_i·v_i
/// - KL(p‖q) = W_f/S_t − log S_t + log S_s, W_f = Σ e_i·(u_i − v_i)
/// - KL(q‖p) = W_r/S_s − log S_s + log S_t, W_r = Σ f_i·(v_i − u_i)
/// - CE(p,q) = H(p) + KL(p‖q)
///
/// W_f and W_r are accumulated directly (not as A − Σe·v) so that nearly equal
/// distributions do not lose precision to cancellation, and identical inputs
/// give W = 0 and S_t = S_s exactly, hence KL = 0 exactly.
struct KLSums {
    var st = 0.0, ss = 0.0, a = 0.0, b = 0.0, wf = 0.0, wr = 0.0

    var isFinite: Bool { st.isFinite && ss.isFinite && !a.isNaN && !b.isNaN && !wf.isNaN && !wr.isNaN }
    var logSt: Double { dlog(st) }
    var logSs: Double { dlog(ss) }
    var teacherEntropy: Double { Swift.max(0, logSt - a / st) }
    var studentEntropy: Double { Swift.max(0, logSs - b / ss) }
    /// Clamped at 0: the true value is ≥ 0 and only rounding can go below.
    var forwardKL: Double { Swift.max(0, wf / st - logSt + logSs) }
    var reverseKL: Double { Swift.max(0, wr / ss - logSs + logSt) }
}

/// Vector type of the streaming kernels. Eight lanes = one AVX2 register:
/// with sixteen lanes (two registers per value) the six accumulators, two
/// exponentials and the constants no longer fit in the 16 ymm registers and
/// the hot loop spills.
typealias KVec = SIMD8<Float>
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

@inline(__always)
func widenK(_ v: KVec) -> Double {
    var s = 0.0
    for l in 0..<KVec.scalarCount { s += Double(v[l]) }
    return s
}

/// Float accumulators of one block.
struct KLBlockAcc {
    var st = KVec(), ss = KVec(), a = KVec()
    var b = KVec(), wf = KVec(), wrNeg = KVec()

    @_transparent
    mutating func step(_ u: KVec, _ v: KVec, guarded: Bool) -> (KVec, KVec) {
        let e = vexpNonPositive(u)
        let f = vexpNonPositive(v)
        let d = u - v
        if guarded {
            // 0·(−inf) must count as 0 (0·log 0 = 0).
            let ez = e .== 0, fz = f .== 0
            a = a.addingProduct(e, u.replacing(with: 0, where: ez))
            wf = wf.addingProduct(e, d.replacing(with: 0, where: ez))
            b = b.addingProduct(f, v.replacing(with: 0, where: fz))
            wrNeg = wrNeg.addingProduct(f, d.replacing(with: 0, where: fz))
        } else {
            a = a.addingProduct(e, u)
            wf = wf.addingProduct(e, d)
            b = b.addingProduct(f, v)
            wrNeg = wrNeg.addingProduct(f, d)
        }
        st += e
        ss += f
        return (e, f)
    }
}

/// Per-row scratch for the losses that need p and q again after the fused
/// pass: e_i, f_i as computed there and, per block, the running maxima they
/// were taken against (so p_i = e_i·e^{(m_blk − M_t)/τ_t}/S_t exactly).
struct ExpStore {
    let e: UnsafeMutablePointer<Float>
    let f: UnsafeMutablePointer<Float>
    let blockMaxT: UnsafeMutablePointer<Float>
    let blockMaxS: UnsafeMutablePointer<Float>

    static func blocks(_ n: Int) -> Int { n / kBlock + 2 }
}

/// Max of one block of one side; NaNs are skipped (`v > acc` is false), so
/// the select compiles to a single `vmaxps`.
@inline(__always)
func blockMaxMin(_ x: UnsafePointer<Float>, _ i: Int, _ end: Int) -> (Float, Float) {
    var mx = KVec(repeating: -.infinity), mn = KVec(repeating: .infinity)
    var j = i
    while j < end {
        let v = loadK(x, j)
        mx = mx.replacing(with: v, where: v .> mx)
        mn = mn.replacing(with: v, where: v .< mn)
        j += KVec.scalarCount
    }
    return (mx.max(), mn.min())
}

/// First index in [i, end) holding m (the block is known to contain it).
@inline(__always)
func firstIndex(of m: Float, _ x: UnsafePointer<Float>, _ i: Int, _ end: Int) -> Int {
    var j = i
    while j < end { if x[j] == m { return j }; j += 1 }
    return i
}

/// Fused single streaming pass for the KL family ("online softmax"): each
/// block of `kBlock` values is first scanned for its max (while it sits in
/// L1), then exponentiated against the running max. When the running max
/// rises by δ (in units of x/τ) the Double sums are rescaled exactly:
/// S' = c·S, A' = c·(A − δ·S), W_f' = c_t·(W_f − (δ_t − δ_s)·S_t), with
/// c = e^{−δ}; so memory is read once per row. Returns the sums relative to
/// the final maxima (as `scanRow` would give them) and both row scans.
///
/// The argmax is not tracked per lane: only the block where the running max
/// last rose is remembered and searched once at the end.
///
/// With `store`, e_i and f_i of the full vectors are written out (see
/// `ExpStore`) for the second pass of the mixture and difference losses.
@inline(__always)
func klFused(
    _ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ n: Int,
    invTauT: Float, invTauS: Float, store: ExpStore? = nil
) -> (KLSums, RowScan, RowScan) {
    var mT = -Float.infinity, mS = -Float.infinity
    var minT = Float.infinity, minS = Float.infinity
    var blkT = -1, blkS = -1
    var dSt = 0.0, dSs = 0.0, dA = 0.0, dB = 0.0, dWf = 0.0, dWr = 0.0
    let it = KVec(repeating: invTauT), iS = KVec(repeating: invTauS)
    let W = KVec.scalarCount
    let nFull = n & ~(W - 1)
    var i = 0

    @inline(__always)
    func raise(_ newT: Float, _ newS: Float) {
        // Sums so far were taken relative to (mT, mS); move them to the new
        // maxima. Both shifts are applied at once, so that W_f and W_r see
        // δ_t − δ_s, which is exactly 0 for identical inputs.
        var dt = 0.0, ds = 0.0
        if newT > mT {
            if mT != -.infinity { dt = Double(newT - mT) * Double(invTauT) }
            mT = newT
        }
        if newS > mS {
            if mS != -.infinity { ds = Double(newS - mS) * Double(invTauS) }
            mS = newS
        }
        if dt == 0 && ds == 0 { return }
        let ct = dt == 0 ? 1 : dexp(-dt), cs = ds == 0 ? 1 : dexp(-ds)
        dA = ct * (dA - dt * dSt)
        dB = cs * (dB - ds * dSs)
        dWf = ct * (dWf - (dt - ds) * dSt)
        dWr = cs * (dWr - (ds - dt) * dSs)
        dSt *= ct
        dSs *= cs
    }

    @inline(__always)
    func flush(_ acc: KLBlockAcc) {
        dSt += widenK(acc.st); dSs += widenK(acc.ss); dA += widenK(acc.a)
        dB += widenK(acc.b); dWf += widenK(acc.wf); dWr -= widenK(acc.wrNeg)
    }

    var blockNo = 0
    while i < nFull {
        let end = Swift.min(i + kBlock, nFull)
        let (bmT, bnT) = blockMaxMin(xt, i, end)
        let (bmS, bnS) = blockMaxMin(xs, i, end)
        if bmT > mT { blkT = i }
        if bmS > mS { blkS = i }
        minT = Swift.min(minT, bnT); minS = Swift.min(minS, bnS)
        raise(bmT, bmS)
        // An all −inf prefix keeps the max at −inf; subtract 0 instead of −inf.
        let mTu: Float = mT == -.infinity ? 0 : mT, mSu: Float = mS == -.infinity ? 0 : mS
        let mt = KVec(repeating: mTu), ms = KVec(repeating: mSu)
        var acc = KLBlockAcc()
        let guarded = bnT == -.infinity || bnS == -.infinity
        var j = i
        if let st = store {
            st.blockMaxT[blockNo] = mT; st.blockMaxS[blockNo] = mS
            if guarded {
                while j < end {
                    let (e, f) = acc.step((loadK(xt, j) - mt) * it, (loadK(xs, j) - ms) * iS, guarded: true)
                    storeK(st.e, j, e); storeK(st.f, j, f)
                    j += W
                }
            } else {
                while j < end {
                    let (e, f) = acc.step((loadK(xt, j) - mt) * it, (loadK(xs, j) - ms) * iS, guarded: false)
                    storeK(st.e, j, e); storeK(st.f, j, f)
                    j += W
                }
            }
        } else if guarded {
            while j < end {
                _ = acc.step((loadK(xt, j) - mt) * it, (loadK(xs, j) - ms) * iS, guarded: true)
                j += W
            }
        } else {
            while j < end {
                _ = acc.step((loadK(xt, j) - mt) * it, (loadK(xs, j) - ms) * iS, guarded: false)
                j += W
            }
        }
        flush(acc)
        i = end
        blockNo += 1
    }
    let scanT = finishScan(xt, blk: blkT, max: mT, min: minT, i, n)
    let scanS = finishScan(xs, blk: blkS, max: mS, min: minS, i, n)
    if i < n {
        raise(scanT.max, scanS.max)
        let mt = KVec(repeating: mT == -.infinity ? 0 : mT)
        let ms = KVec(repeating: mS == -.infinity ? 0 : mS)
        var acc = KLBlockAcc()
        let u = (loadTailK(xt, i, n, pad: -.infinity) - mt) * it
        let v = (loadTailK(xs, i, n, pad: -.infinity) - ms) * iS
        _ = acc.step(u, v, guarded: true)
        flush(acc)
    }
    return (KLSums(st: dSt, ss: dSs, a: dA, b: dB, wf: dWf, wr: dWr), scanT, scanS)
}

/// Row scan from the block maxima plus the scalar tail [i, n): the argmax is
/// the first index of the max inside the block where it first appeared,
/// unless the tail holds a strictly larger value.
@inline(__always)
func finishScan(_ x: UnsafePointer<Float>, blk: Int, max m: Float, min mnIn: Float, _ i: Int, _ n: Int) -> RowScan {
    var best = m
    var bestIndex = blk >= 0 ? firstIndex(of: m, x, blk, Swift.min(blk + kBlock, i)) : 0
    var mn = mnIn
    var k = i
    while k < n {
        let v = x[k]
        if v > best { best = v; bestIndex = k }
        if v < mn || v.isNaN { mn = v }
        k += 1
    }
    return RowScan(max: best, argmax: bestIndex, min: mn)
}

/// Float scale turning the stored e_i of block `b` into p_i:
/// e^{(m_blk − M)/τ}/S (0 for an all −inf prefix, whose e_i are 0 anyway).
@inline(__always)
func blockScale(_ mBlk: Float, _ m: Float, invTau: Float, invS: Double) -> Float {
    if mBlk == -.infinity { return 0 }
    return Float(dexp(Double(mBlk - m) * Double(invTau)) * invS)
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
        d += widenK(a) + widenK(b)
    }
    if i < n { d += widenK(vexpNonPositive((loadTailK(x, i, n, pad: -.infinity) - mv) * iv)) }
    return d
}

/// Pass 2 for the mixture losses, m = w·p + (1−w)·q. Returns
/// (Σ p_i log(p_i/m_i), Σ q_i log(q_i/m_i)) = (KL(p‖m), KL(q‖m)).
///
/// Each log ratio is formed from the ratio t = min(p,q)/max(p,q) ∈ [0,1]:
/// if q ≤ p, log(m/p) = log(w + (1−w)·t) and log(m/q) = log(m/p) − log(q/p);
/// otherwise symmetrically. log(q/p) = (v − u) + (log S_t − log S_s) comes
/// from the log-values, so no term is the difference of two large logs.
///
/// p and q come from the exponentials stored by `klFused` (no exp here); the
/// only transcendental per element is one log. Blocks are first summed
/// without the 0·∞ guards; a block whose sum is NaN (some p or q is exactly
/// 0) is redone with them.
@inline(__always)
func mixtureSums(
    _ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ n: Int,
    maxT: Float, invTauT: Float, maxS: Float, invTauS: Float,
    st: Double, ss: Double, w: Float, store: ExpStore
) -> (Double, Double) {
    let logSt = dlog(st), logSs = dlog(ss)
    let mt = KVec(repeating: maxT), ms = KVec(repeating: maxS)
    let it = KVec(repeating: invTauT), iS = KVec(repeating: invTauS)
    let c = KVec(repeating: Float(logSt - logSs))
    let wv = KVec(repeating: w), w1 = KVec(repeating: 1 - w)
    // Arguments of the log lie in [min(w, 1−w), 1]: skip the special cases
    // unless that bound is 0 or subnormal.
    let normalArgs = Swift.min(w, 1 - w) >= Float.leastNormalMagnitude
    var dP = 0.0, dQ = 0.0
    let W = KVec.scalarCount

    @inline(__always)
    func step(
        _ p: KVec, _ q: KVec, _ xtv: KVec, _ xsv: KVec, _ aP: inout KVec, _ aQ: inout KVec,
        guarded: Bool, normal: Bool
    ) {
        let u = (xtv - mt) * it
        let v = (xsv - ms) * iS
        let d = (v - u) + c  // log(q/p)
        let qBig = q .> p
        let hi = p.replacing(with: q, where: qBig)
        let lo = q.replacing(with: p, where: qBig)
        var t = lo / hi
        if guarded { t = t.replacing(with: 0, where: hi .== 0) }
        // log(m/max(p,q)).
        let arg = wv.addingProduct(w1, t).replacing(with: w1.addingProduct(wv, t), where: qBig)
        let lmHi = normal ? vlogNormal(arg) : vlog(arg)
        let lmP = lmHi.replacing(with: lmHi + d, where: qBig)  // log(m/p)
        let lmQ = lmHi.replacing(with: lmHi - d, where: q .<= p)  // log(m/q)
        if guarded {
            aP = aP.addingProduct(p, lmP.replacing(with: 0, where: p .== 0))
            aQ = aQ.addingProduct(q, lmQ.replacing(with: 0, where: q .== 0))
        } else {
            aP = aP.addingProduct(p, lmP)
            aQ = aQ.addingProduct(q, lmQ)
        }
    }

    @inline(__always)
    func block(_ i: Int, _ end: Int, _ cT: KVec, _ cS: KVec, guarded: Bool, normal: Bool) -> (Double, Double) {
        var aP = KVec(), aQ = KVec()
        var j = i
        while j < end {
            step(
                loadK(store.e, j) * cT, loadK(store.f, j) * cS, loadK(xt, j), loadK(xs, j), &aP, &aQ,
                guarded: guarded, normal: normal)
            j += W
        }
        return (widenK(aP), widenK(aQ))
    }

    let nFull = n & ~(W - 1)
    var i = 0
    var blockNo = 0
    let invSt = 1 / st, invSs = 1 / ss
    while i < nFull {
        let end = Swift.min(i + kBlock, nFull)
        let cT = KVec(repeating: blockScale(store.blockMaxT[blockNo], maxT, invTau: invTauT, invS: invSt))
        let cS = KVec(repeating: blockScale(store.blockMaxS[blockNo], maxS, invTau: invTauS, invS: invSs))
        var (bp, bq) =
            normalArgs
            ? block(i, end, cT, cS, guarded: false, normal: true)
            : block(i, end, cT, cS, guarded: false, normal: false)
        if bp.isNaN || bq.isNaN {
            (bp, bq) = block(i, end, cT, cS, guarded: true, normal: false)
        }
        dP -= bp; dQ -= bq
        i = end
        blockNo += 1
    }
    if i < n {
        var aP = KVec(), aQ = KVec()
        let xtv = loadTailK(xt, i, n, pad: -.infinity), xsv = loadTailK(xs, i, n, pad: -.infinity)
        let p = vexpNonPositive((xtv - mt) * it - KVec(repeating: Float(logSt)))
        let q = vexpNonPositive((xsv - ms) * iS - KVec(repeating: Float(logSs)))
        step(p, q, xtv, xsv, &aP, &aQ, guarded: true, normal: false)
        dP -= widenK(aP); dQ -= widenK(aQ)
    }
    return (Swift.max(0, dP), Swift.max(0, dQ))
}

/// Pass 2 for TVD and prob-MSE: (Σ|p_i − q_i|, Σ(p_i − q_i)²), with p and q
/// from the exponentials stored by `klFused`.
@inline(__always)
func differenceSums(
    _ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ n: Int,
    maxT: Float, invTauT: Float, maxS: Float, invTauS: Float,
    invSt: Double, invSs: Double, store: ExpStore
) -> (Double, Double) {
    var dA = 0.0, dS = 0.0
    let W = KVec.scalarCount
    var i = 0
    var blockNo = 0
    let nFull = n & ~(W - 1)
    while i < nFull {
        let end = Swift.min(i + kBlock, nFull)
        let cT = KVec(repeating: blockScale(store.blockMaxT[blockNo], maxT, invTau: invTauT, invS: invSt))
        let cS = KVec(repeating: blockScale(store.blockMaxS[blockNo], maxS, invTau: invTauS, invS: invSs))
        var aA = KVec(), aS = KVec()
        while i < end {
            let diff = loadK(store.e, i) * cT - loadK(store.f, i) * cS
            aA += diff.replacing(with: -diff, where: diff .< 0)
            aS = aS.addingProduct(diff, diff)
            i += W
        }
        dA += widenK(aA); dS += widenK(aS)
        blockNo += 1
    }
    if i < n {
        let mt = KVec(repeating: maxT), ms = KVec(repeating: maxS)
        let it = KVec(repeating: invTauT), iS = KVec(repeating: invTauS)
        let p = vexpNonPositive((loadTailK(xt, i, n, pad: -.infinity) - mt) * it) * KVec(repeating: Float(invSt))
        let q = vexpNonPositive((loadTailK(xs, i, n, pad: -.infinity) - ms) * iS) * KVec(repeating: Float(invSs))
        let diff = p - q
        dA += widenK(diff.replacing(with: -diff, where: diff .< 0))
        dS += widenK(diff * diff)
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
