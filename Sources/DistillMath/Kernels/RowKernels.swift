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

/// Float accumulators of one block (≤ `flushEvery` vectors).
struct KLBlockAcc {
    var st = FloatVector(), ss = FloatVector(), a = FloatVector()
    var b = FloatVector(), wf = FloatVector(), wr = FloatVector()
}

@inline(__always)
func klStep(_ u: FloatVector, _ v: FloatVector, _ guarded: Bool, _ acc: inout KLBlockAcc) {
    let e = vexpNonPositive(u)
    let f = vexpNonPositive(v)
    let d = u - v
    if guarded {
        // 0·(−inf) must count as 0 (0·log 0 = 0).
        let ez = e .== 0, fz = f .== 0
        let zero = FloatVector()
        acc.a = acc.a.addingProduct(e, u.replacing(with: zero, where: ez))
        acc.wf = acc.wf.addingProduct(e, d.replacing(with: zero, where: ez))
        acc.b = acc.b.addingProduct(f, v.replacing(with: zero, where: fz))
        acc.wr = acc.wr.addingProduct(f, (-d).replacing(with: zero, where: fz))
    } else {
        acc.a = acc.a.addingProduct(e, u)
        acc.wf = acc.wf.addingProduct(e, d)
        acc.b = acc.b.addingProduct(f, v)
        acc.wr = acc.wr.addingProduct(f, -d)
    }
    acc.st += e
    acc.ss += f
}

/// Running max / first argmax / min of one side while streaming.
struct ScanState {
    var maxv = FloatVector(repeating: -.infinity)
    var minv = FloatVector(repeating: .infinity)
    var blockv = IntVector(repeating: 0)
    var blk = IntVector(repeating: 0)

    /// Folds vectors [i, end) into the running lane maxima; returns the block
    /// max and min.
    @inline(__always)
    mutating func scan(_ x: UnsafePointer<Float>, _ i: Int, _ end: Int) -> (Float, Float) {
        var bmax = FloatVector(repeating: -.infinity)
        var bmin = FloatVector(repeating: .infinity)
        var j = i
        let one = IntVector(repeating: 1)
        while j < end {
            let v = loadVector(x, j)
            let gt = v .> maxv
            maxv = maxv.replacing(with: v, where: gt)
            blockv = blockv.replacing(with: blk, where: gt)
            bmax = bmax.replacing(with: v, where: v .> bmax)
            bmin = bmin.replacing(with: v, where: v .< bmin)
            blk &+= one
            j += 16
        }
        minv = minv.replacing(with: bmin, where: bmin .< minv)
        return (bmax.max(), bmin.min())
    }

    /// Adds the scalar tail [i, n) and returns the row scan.
    func finish(_ x: UnsafePointer<Float>, _ i: Int, _ n: Int) -> RowScan {
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
        var k = i
        while k < n {
            let v = x[k]
            if v > best { best = v; bestIndex = k }
            if v < mn || v.isNaN { mn = v }
            k += 1
        }
        if bestIndex == Int.max { bestIndex = 0 }
        return RowScan(max: best, argmax: bestIndex, min: mn)
    }
}

/// Fused single streaming pass for the KL family ("online softmax"): each
/// block of 512 values is first scanned for its max (while it sits in L1),
/// then exponentiated against the running max. When the running max rises by
/// δ (in units of x/τ) the Double sums are rescaled exactly:
/// S' = c·S, A' = c·(A − δ·S), W_f' = c_t·(W_f − (δ_t − δ_s)·S_t), with
/// c = e^{−δ}; so memory is read once per row. Returns the sums relative to
/// the final maxima (as `scanRow` would give them) and both row scans.
@inline(__always)
func klFused(_ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ n: Int,
             invTauT: Float, invTauS: Float) -> (KLSums, RowScan, RowScan) {
    var scT = ScanState(), scS = ScanState()
    var mT = -Float.infinity, mS = -Float.infinity
    var dSt = 0.0, dSs = 0.0, dA = 0.0, dB = 0.0, dWf = 0.0, dWr = 0.0
    let it = FloatVector(repeating: invTauT), iS = FloatVector(repeating: invTauS)
    let nFull = n & ~15
    var i = 0

    @inline(__always)
    func raise(_ newT: Float, _ newS: Float) {
        // Sums so far were taken relative to (mT, mS); move them to the new maxima.
        if newT > mT {
            if mT != -.infinity {
                let dt = Double(newT - mT) * Double(invTauT)
                let c = dexp(-dt)
                dA = c * (dA - dt * dSt); dWf = c * (dWf - dt * dSt)
                dWr = dWr + dt * dSs
                dSt *= c
            }
            mT = newT
        }
        if newS > mS {
            if mS != -.infinity {
                let ds = Double(newS - mS) * Double(invTauS)
                let c = dexp(-ds)
                dB = c * (dB - ds * dSs); dWr = c * (dWr - ds * dSs)
                dWf = dWf + ds * dSt
                dSs *= c
            }
            mS = newS
        }
    }

    while i < nFull {
        let end = Swift.min(i + flushEvery * 16, nFull)
        let (bmT, bnT) = scT.scan(xt, i, end)
        let (bmS, bnS) = scS.scan(xs, i, end)
        raise(bmT, bmS)
        // An all −inf prefix keeps the max at −inf; subtract 0 instead of −inf.
        let mt = FloatVector(repeating: mT == -.infinity ? 0 : mT)
        let ms = FloatVector(repeating: mS == -.infinity ? 0 : mS)
        var acc = KLBlockAcc()
        if bnT == -.infinity || bnS == -.infinity {
            var j = i
            while j < end {
                klStep((loadVector(xt, j) - mt) * it, (loadVector(xs, j) - ms) * iS, true, &acc)
                j += 16
            }
        } else {
            var j = i
            while j < end {
                klStep((loadVector(xt, j) - mt) * it, (loadVector(xs, j) - ms) * iS, false, &acc)
                j += 16
            }
        }
        dSt += widen(acc.st).sum(); dSs += widen(acc.ss).sum(); dA += widen(acc.a).sum()
        dB += widen(acc.b).sum(); dWf += widen(acc.wf).sum(); dWr += widen(acc.wr).sum()
        i = end
    }
    let scanT = scT.finish(xt, i, n)
    let scanS = scS.finish(xs, i, n)
    if i < n {
        raise(scanT.max, scanS.max)
        let mt = FloatVector(repeating: mT == -.infinity ? 0 : mT)
        let ms = FloatVector(repeating: mS == -.infinity ? 0 : mS)
        var acc = KLBlockAcc()
        let u = (loadTail(xt, i, n, pad: -.infinity) - mt) * it
        let v = (loadTail(xs, i, n, pad: -.infinity) - ms) * iS
        klStep(u, v, true, &acc)
        dSt += widen(acc.st).sum(); dSs += widen(acc.ss).sum(); dA += widen(acc.a).sum()
        dB += widen(acc.b).sum(); dWf += widen(acc.wf).sum(); dWr += widen(acc.wr).sum()
    }
    return (KLSums(st: dSt, ss: dSs, a: dA, b: dB, wf: dWf, wr: dWr), scanT, scanS)
}

/// S = Σ e^{(x_i − M)/τ}: the log-sum-exp pass for a single row
/// (log Σ e^{x/τ} = M/τ + log S).
@inline(__always)
func expSum(_ x: UnsafePointer<Float>, _ n: Int, max m: Float, invTau: Float) -> Double {
    let mv = FloatVector(repeating: m), iv = FloatVector(repeating: invTau)
    var d = SIMD8<Double>()
    let nFull = n & ~15
    var i = 0
    while i < nFull {
        let end = Swift.min(i + flushEvery * 16, nFull)
        var a = FloatVector()
        while i < end {
            a += vexpNonPositive((loadVector(x, i) - mv) * iv)
            i += 16
        }
        d += widen(a)
    }
    if i < n { d += widen(vexpNonPositive((loadTail(x, i, n, pad: -.infinity) - mv) * iv)) }
    return d.sum()
}

/// Pass 3 for the mixture losses, m = w·p + (1−w)·q. Returns
/// (Σ p_i log(p_i/m_i), Σ q_i log(q_i/m_i)) = (KL(p‖m), KL(q‖m)).
///
/// Each log ratio is formed from the ratio t = min(p,q)/max(p,q) ∈ [0,1]:
/// if q ≤ p, log(m/p) = log(w + (1−w)·t) and log(m/q) = log(m/p) − log(q/p);
/// otherwise symmetrically. log(q/p) = (v − u) + (log S_t − log S_s) comes
/// from the log-values, so no term is the difference of two large logs.
@inline(__always)
func mixtureSums(_ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ n: Int,
                 maxT: Float, invTauT: Float, maxS: Float, invTauS: Float,
                 logSt: Double, logSs: Double, w: Float) -> (Double, Double) {
    let mt = FloatVector(repeating: maxT), ms = FloatVector(repeating: maxS)
    let it = FloatVector(repeating: invTauT), iS = FloatVector(repeating: invTauS)
    let lt = FloatVector(repeating: Float(logSt)), ls = FloatVector(repeating: Float(logSs))
    let c = FloatVector(repeating: Float(logSt - logSs))
    let wv = FloatVector(repeating: w), w1 = FloatVector(repeating: 1 - w)
    var dP = SIMD8<Double>(), dQ = SIMD8<Double>()
    var i = 0

    @inline(__always)
    func step(_ xtv: FloatVector, _ xsv: FloatVector, _ aP: inout FloatVector, _ aQ: inout FloatVector) {
        let u = (xtv - mt) * it
        let v = (xsv - ms) * iS
        let p = vexpNonPositive(u - lt)
        let q = vexpNonPositive(v - ls)
        let d = (v - u) + c                       // log(q/p)
        let qSmall = q .<= p
        let qBig = q .> p   // not `.!qSmall`: mask negation is scalarised by the compiler
        let hi = p.replacing(with: q, where: qBig)
        let lo = q.replacing(with: p, where: qBig)
        let t = (lo / hi).replacing(with: 0, where: hi .== 0)
        // log(m/max(p,q)).
        let arg = (wv + w1 * t).replacing(with: wv * t + w1, where: qBig)
        let lmHi = vlog(arg)
        let zero = FloatVector()
        let lmP = lmHi.replacing(with: lmHi + d, where: qBig)    // log(m/p)
        let lmQ = lmHi.replacing(with: lmHi - d, where: qSmall)      // log(m/q)
        aP -= (p * lmP).replacing(with: zero, where: p .== 0)
        aQ -= (q * lmQ).replacing(with: zero, where: q .== 0)
    }

    let nFull = n & ~15
    while i < nFull {
        let end = Swift.min(i + flushEvery * 16, nFull)
        var aP = FloatVector(), aQ = FloatVector()
        while i < end {
            step(loadVector(xt, i), loadVector(xs, i), &aP, &aQ)
            i += 16
        }
        dP += widen(aP); dQ += widen(aQ)
    }
    if i < n {
        var aP = FloatVector(), aQ = FloatVector()
        step(loadTail(xt, i, n, pad: -.infinity), loadTail(xs, i, n, pad: -.infinity), &aP, &aQ)
        dP += widen(aP); dQ += widen(aQ)
    }
    return (Swift.max(0, dP.sum()), Swift.max(0, dQ.sum()))
}

/// Pass 3 for TVD and prob-MSE: (Σ|p_i − q_i|, Σ(p_i − q_i)²).
@inline(__always)
func differenceSums(_ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ n: Int,
                    maxT: Float, invTauT: Float, maxS: Float, invTauS: Float,
                    invSt: Double, invSs: Double) -> (Double, Double) {
    let mt = FloatVector(repeating: maxT), ms = FloatVector(repeating: maxS)
    let it = FloatVector(repeating: invTauT), iS = FloatVector(repeating: invTauS)
    let st = FloatVector(repeating: Float(invSt)), ss = FloatVector(repeating: Float(invSs))
    var dA = SIMD8<Double>(), dS = SIMD8<Double>()
    var i = 0
    let nFull = n & ~15
    while i < nFull {
        let end = Swift.min(i + flushEvery * 16, nFull)
        var aA = FloatVector(), aS = FloatVector()
        while i < end {
            let p = vexpNonPositive((loadVector(xt, i) - mt) * it) * st
            let q = vexpNonPositive((loadVector(xs, i) - ms) * iS) * ss
            let diff = p - q
            aA += diff.replacing(with: -diff, where: diff .< 0)
            aS += diff * diff
            i += 16
        }
        dA += widen(aA); dS += widen(aS)
    }
    if i < n {
        let p = vexpNonPositive((loadTail(xt, i, n, pad: -.infinity) - mt) * it) * st
        let q = vexpNonPositive((loadTail(xs, i, n, pad: -.infinity) - ms) * iS) * ss
        let diff = p - q
        dA += widen(diff.replacing(with: -diff, where: diff .< 0))
        dS += widen(diff * diff)
    }
    return (dA.sum(), dS.sum())
}

/// Σ (x_t,i/τ_t − x_s,i/τ_s)² over raw logits; positions where both are −inf
/// (the same masked vocabulary entry) contribute 0, one-sided −inf gives +inf.
@inline(__always)
func logitSquaredDifferenceSum(_ xt: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, _ n: Int,
                               invTauT: Float, invTauS: Float) -> Double {
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
