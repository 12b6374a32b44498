/// Loss formulas for one position, on dense rows (SIMD kernels) and on small
/// explicit distributions (Double, used for top-k inputs).

/// What one position contributes.
struct RowOutput {
    var loss: Double = 0
    /// H(p), H(q) at the configured temperatures; NaN when not computed.
    var teacherEntropy: Double = .nan
    var studentEntropy: Double = .nan
    /// H(p, q) = H(p) + KL(p‖q); NaN when not computed.
    var crossEntropy: Double = .nan
    var agree = false
    /// Probability mass outside the compared outcomes (top-k inputs only).
    var teacherTail: Double = 0
    var studentTail: Double = 0
}

/// α·x that treats 0·∞ as 0: a term with zero weight is simply absent.
@inline(__always)
func weighted(_ w: Double, _ x: Double) -> Double { w == 0 ? 0 : w * x }

/// Dense teacher row vs dense student row, both as float log-values;
/// `formula` is `c.name.descriptor.formula`, worked out once per run.
@inline(__always)
func denseRowLoss(
    xt: UnsafePointer<Float>, scanT: RowScan, xs: UnsafePointer<Float>, scanS: RowScan,
    sums: KLSums?, n: Int, config c: LossConfig, formula: LossDescriptor.Formula, label: Int?, store: ExpStore? = nil,
    next: RowPrefetch? = nil
) -> RowOutput {
    var out = RowOutput()
    out.agree = scanT.argmax == scanS.argmax
    let itT = Float(1 / c.teacherTemperature), itS = Float(1 / c.studentTemperature)
    // The fused pass and its second passes work in base 2 (see `KLSums`).
    let k2T = LossConfig.log2Scale(c.teacherTemperature), k2S = LossConfig.log2Scale(c.studentTemperature)
    if formula == .logitMSE {
        out.loss = weighted(c.softScale, logitSquaredDifferenceSum(xt, xs, n, invTauT: itT, invTauS: itS) / Double(n))
        return out
    }
    guard let sums = sums, sums.isFinite else { out.loss = .nan; return out }
    out.teacherEntropy = sums.teacherEntropy
    out.studentEntropy = sums.studentEntropy
    let kl = sums.forwardKL
    out.crossEntropy = out.teacherEntropy + kl
    let scale = c.softScale
    switch formula {
    case .forwardKL: out.loss = weighted(scale, kl)
    case .reverseKL: out.loss = weighted(scale, sums.reverseKL)
    case .crossEntropy: out.loss = weighted(scale, out.crossEntropy)
    case .mixture(let mixture):
        let w = mixture.weight(alpha: c.alpha, beta: c.beta)
        let klPM: Double, klQM: Double
        // m = p (w = 1) or m = q (w = 0): the two KLs are 0 and the plain KL
        // of the other side, exactly.
        if w == 1 {
            (klPM, klQM) = (0, sums.reverseKL)
        } else if w == 0 {
            (klPM, klQM) = (kl, 0)
        } else {
            (klPM, klQM) = mixtureSums(
                xt, xs, n, scaleT: k2T, scaleS: k2S, sums: sums, w: w, store: store!, next: next ?? .none(xt, xs))
        }
        out.loss = weighted(scale, mixture.combine(klPM: klPM, klQM: klQM, beta: c.beta))
    case .totalVariation, .probabilityMSE:
        let (absSum, sqSum) = differenceSums(
            xt, xs, n, scaleT: k2T, scaleS: k2S, sums: sums, store: store!, next: next ?? .none(xt, xs))
        out.loss = weighted(scale, formula == .totalVariation ? Swift.min(1, 0.5 * absSum) : sqSum / Double(n))
    case .combined:
        let hard = hardLabelNLL(xs, scanS, n, invTau: 1, label: label ?? 0)
        out.loss = weighted(c.alpha, hard) + weighted((1 - c.alpha) * scale, kl)
    case .hardLabel, .logitMSE:
        break
    }
    return out
}

/// −log softmax(x/τ)[y] for a dense row.
@inline(__always)
func hardLabelNLL(_ x: UnsafePointer<Float>, _ scan: RowScan, _ n: Int, invTau: Float, label y: Int) -> Double {
    let s = expSum(x, n, max: scan.max, invTau: invTau)
    let v = Double((x[y] - scan.max) * invTau)
    if v == -.infinity { return .infinity }
    return Swift.max(0, dlog(s) - v)
}

/// A dense row's loss computed in Double from the definition: both rows
/// log-softmaxed in Double, then `explicitLoss`.
///
/// The fused float32 pass forms each exponent as x·(log2 e/τ) − fl(M·log2 e/τ);
/// when |M|/τ reaches about 1e7 the rounding of fl(M·log2 e/τ) alone exceeds
/// float's exponent range and the row's sums overflow. Those rows (rare: large
/// logits at a small τ) come here, so finite inputs always give the correct loss.
func doubleRowLoss(
    xt: UnsafePointer<Float>, scanT: RowScan, xs: UnsafePointer<Float>, scanS: RowScan, n: Int, config c: LossConfig,
    label: Int?
) -> RowOutput {
    let lp = doubleLogSoftmax(xt, n, max: scanT.max, tau: c.teacherTemperature)
    let lq = doubleLogSoftmax(xs, n, max: scanS.max, tau: c.studentTemperature)
    let e = lp.withUnsafeBufferPointer { p in lq.withUnsafeBufferPointer { q in explicitLoss(lp: p, lq: q, config: c) } }
    var out = RowOutput()
    out.agree = scanT.argmax == scanS.argmax
    out.teacherEntropy = e.hp
    out.studentEntropy = e.hq
    out.crossEntropy = e.hp + e.kl
    if c.name.descriptor.formula == .combined {
        let hard = hardLabelNLL(xs, scanS, n, invTau: 1, label: label ?? 0)
        out.loss = weighted(c.alpha, hard) + weighted((1 - c.alpha) * c.softScale, e.kl)
    } else {
        out.loss = weighted(c.softScale, e.loss)
    }
    return out
}

/// log(e^a + e^b) without overflow or underflow; −∞ when both are −∞.
@inline(__always)
func logAddExp(_ a: Double, _ b: Double) -> Double {
    let hi = Swift.max(a, b), lo = Swift.min(a, b)
    if hi == -.infinity { return -.infinity }
    return hi + dlog1p(dexp(lo - hi))
}

/// log softmax(x/τ) in Double; −∞ entries stay −∞. `max` is the row's largest value.
func doubleLogSoftmax(_ x: UnsafePointer<Float>, _ n: Int, max m: Float, tau: Double) -> [Double] {
    let top = Double(m)
    var u = [Double](repeating: 0, count: n)
    var sum = 0.0
    for i in 0..<n {
        u[i] = (Double(x[i]) - top) / tau
        sum += dexp(u[i])
    }
    let lse = dlog(sum)
    for i in 0..<n { u[i] -= lse }
    return u
}

/// Loss between two explicit distributions given as natural-log
/// probabilities (−inf allowed) over the same outcomes, in Double. Used for
/// top-k inputs and as the definition the SIMD kernels must agree with.
/// Returns (loss before soft scaling, H(p), H(q), KL(p‖q)).
func explicitLoss(lp: UnsafeBufferPointer<Double>, lq: UnsafeBufferPointer<Double>, config c: LossConfig)
    -> (loss: Double, hp: Double, hq: Double, kl: Double)
{
    var hp = 0.0, hq = 0.0, kl = 0.0, rkl = 0.0, absSum = 0.0, sqSum = 0.0, klPM = 0.0, klQM = 0.0
    let w = c.mixtureWeight
    let logW = dlog(w), logW1 = dlog(1 - w)
    for i in 0..<lp.count {
        let a = lp[i], b = lq[i]
        let p = dexp(a), q = dexp(b)
        if p > 0 { hp -= p * a; kl += p * (a - b) }
        if q > 0 { hq -= q * b; rkl += q * (b - a) }
        absSum += abs(p - q)
        sqSum += (p - q) * (p - q)
        // log m by log-sum-exp, so a tiny p or q whose weighted value would
        // underflow to 0 still gives a finite log m.
        let lm = logAddExp(logW + a, logW1 + b)
        if p > 0 { klPM += p * (a - lm) }
        if q > 0 { klQM += q * (b - lm) }
    }
    kl = Swift.max(0, kl)
    let loss: Double
    switch c.name.descriptor.formula {
    case .forwardKL, .combined: loss = kl
    case .reverseKL: loss = Swift.max(0, rkl)
    case .crossEntropy: loss = hp + kl
    case .totalVariation: loss = Swift.min(1, 0.5 * absSum)
    case .probabilityMSE: loss = sqSum / Double(lp.count)
    case .mixture(let mixture):
        loss = mixture.combine(klPM: Swift.max(0, klPM), klQM: Swift.max(0, klQM), beta: c.beta)
    case .hardLabel, .logitMSE: loss = 0
    }
    return (loss, Swift.max(0, hp), Swift.max(0, hq), kl)
}
