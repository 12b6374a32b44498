/// Vectorised float32 `exp` and `log` used by the row kernels.
///
/// Both follow the classic Cody–Waite range reduction + minimax polynomial
/// scheme, written on the kernels' vector type `KVec` (8 or 16 lanes, see
/// Width.swift), with polynomials fitted by our own scripts: `exp` a degree-5
/// fit in Estrin form (Tests/python/fit_exp_polynomial.py), `log` a degree-9
/// one in Horner form (Tests/python/fit_log_polynomial.py). They avoid `rounded()` and `frexp` because on the baseline x86-64
/// target those become per-lane library calls; the bit tricks below stay in
/// vector registers.
///
/// Accuracy (measured in `VectorMathTests` against `Double` over the whole
/// accepted range): exp within 2.6 ulp (relative error 2.1e-7), log within
/// 1.1 ulp (relative error 9.4e-8).

let vLog2e: Float = 1.44269504088896341
/// ln 2 split so that `n * ln2Hi` is exact for |n| < 2^9 (Cody–Waite).
let vLn2Hi: Float = 0.693359375
let vLn2Lo: Float = -2.12194440e-4
/// 1.5 · 2^23: adding it rounds a float of magnitude < 2^22 to an integer
/// (round-to-nearest-even) and leaves that integer in the low mantissa bits.
let vRoundMagic: Float = 12582912.0

/// Below this `exp` returns exactly 0. The true result is < 1.7e-38, which no
/// loss sum can tell from 0 next to its largest term (1); and 0 keeps e^u·u
/// at 0 for the huge negative logits used as masks (−1e30, −FLT_MAX).
public let vexpLowerLimit: Float = -87.0
/// Above this `exp` returns +inf. The true overflow point is 88.7228; the
/// last 0.35 is given up so that the scale 2^n never needs n = 128.
public let vexpUpperLimit: Float = 88.37626

/// Minimax coefficients of e^r ≈ 1 + r + c2·r² + c3·r³ + c4·r⁴ + c5·r⁵ on
/// |r| ≤ ln2/2, with the first two fixed at 1 so e^0 = 1 exactly (relative
/// error 1.06e-7; fitted by Tests/python/fit_exp_polynomial.py).
let vExpC2: Float = 0.499992311000824
let vExpC3: Float = 0.16667114198207855
let vExpC4: Float = 0.041890114545822144
let vExpC5: Float = 0.008312525227665901

/// e^x for x ≤ 0 (the only case the softmax kernels need, after the row
/// maximum has been subtracted). −inf → 0, NaN → NaN.
///
/// x = n·ln2 + r with |r| ≤ ln2/2 (Cody–Waite, two FMAs), e^r by the
/// polynomial above in Estrin form (two levels instead of a five-deep Horner
/// chain: the kernels are limited by how many exponentials are in flight, so
/// latency matters as much as the operation count), and 2^n added straight
/// into the exponent field: with t = 1.5·2^23 + n, `bits(t) << 23` is n·2^23
/// (the magic number's low nine bits are 0), so no multiply is needed.
///
/// Written on the kernels' `KVec`, concrete on purpose: the generic SIMD
/// comparison operators compile to per-lane loops.
@inline(__always)
func vexpNonPositive(_ x: KVec) -> KVec {
    let magic = KVec(repeating: vRoundMagic)
    let t = magic.addingProduct(x, KVec(repeating: vLog2e))
    let n = t - magic
    // r = x − n·ln2 in two steps keeps r exact to float precision.
    var r = x.addingProduct(n, KVec(repeating: -vLn2Hi))
    r = r.addingProduct(n, KVec(repeating: -vLn2Lo))
    let r2 = r * r
    let lo = r + KVec(repeating: 1)
    let mid = KVec(repeating: vExpC2).addingProduct(KVec(repeating: vExpC3), r)
    let hi = KVec(repeating: vExpC4).addingProduct(KVec(repeating: vExpC5), r)
    let y = lo.addingProduct(mid.addingProduct(hi, r2), r2)
    let bits = unsafeBitCast(y, to: KIVec.self) &+ (unsafeBitCast(t, to: KIVec.self) &<< KIVec(repeating: 23))
    // Zero below the limit with a bitwise AND on the comparison's lanes
    // (all ones where x ≥ limit, NaN included): the generic `replacing`
    // is a per-lane loop the vectoriser does not always rebuild cleanly.
    let keep = unsafeBitCast(.!(x .< KVec(repeating: vexpLowerLimit)), to: KIVec.self)
    return unsafeBitCast(bits & keep, to: KVec.self)
}

/// Minimax coefficients of 2^f ≈ 1 + d1·f + … + d5·f⁵ on |f| ≤ 1/2, the
/// constant fixed at 1 so 2^0 = 1 exactly (relative error 1.08e-7; fitted by
/// Tests/python/fit_exp_polynomial.py).
let vExp2D: (Float, Float, Float, Float, Float) = (
    0.6931470036506653, 0.24022242426872253, 0.05550733581185341, 0.009671512991189957, 0.001326472731307149
)
/// Below this `vexp2NonPositive` returns exactly 0 (2^−125 ≈ 2.4e−38, the
/// same cut as `vexpLowerLimit` in base 2, rounded so 2^n stays normal).
public let vexp2LowerLimit: Float = -125.0

/// 2^y for y ≤ 0, the exponential of the fused KL pass: its inputs are
/// y = x·log2(e)/τ − r, one FMA from the logits, so no Cody–Waite reduction
/// is needed. n = round(y) by the 1.5·2^23 trick, f = y − n exactly
/// (|f| ≤ 1/2), 2^f by the polynomial above in Horner form, and 2^n added
/// into the exponent field as in `vexpNonPositive`. Five multiply-class
/// operations against eight for e^x with its reduction: the fused pass is
/// bound by the multiply–add pipes (Horner's five beat Estrin's six there,
/// about 6% in interleaved runs, its longer chain notwithstanding).
/// −inf → 0, +NaN → NaN, −NaN → 0 (the loss sums still see the NaN through
/// their y·2^y terms).
@inline(__always)
func vexp2NonPositive(_ y: KVec) -> KVec {
    let magic = KVec(repeating: vRoundMagic)
    let t = y + magic
    let f = y - (t - magic)
    var p = KVec(repeating: vExp2D.3).addingProduct(KVec(repeating: vExp2D.4), f)
    p = KVec(repeating: vExp2D.2).addingProduct(p, f)
    p = KVec(repeating: vExp2D.1).addingProduct(p, f)
    p = KVec(repeating: vExp2D.0).addingProduct(p, f)
    p = KVec(repeating: 1).addingProduct(p, f)
    let bits = unsafeBitCast(p, to: KIVec.self) &+ (unsafeBitCast(t, to: KIVec.self) &<< KIVec(repeating: 23))
    // y < −125 ⇔ bits(y) > bits(−125) as unsigned (−inf too; y ≥ 0 has the
    // sign bit clear): an integer compare, which measured faster here than
    // the float one.
    let drop = unsafeBitCast(y, to: KUVec.self) .> KUVec(repeating: vexp2LowerLimit.bitPattern)
    return unsafeBitCast(bits, to: KVec.self).replacing(with: 0, where: drop)
}

/// e^x over the whole float range: 0 below `vexpLowerLimit`, +inf above
/// `vexpUpperLimit`, NaN for NaN.
@inline(__always)
func vexp(_ x: KVec) -> KVec {
    let big = x .> vexpUpperLimit
    let clamped = x.replacing(with: 0, where: big)
    return vexpNonPositive(clamped).replacing(with: .infinity, where: big)
}

/// Minimax coefficients of log(1 + f) ≈ f + f²·(q0 + q1·f + … + q7·f⁷) on
/// f ∈ [√½ − 1, √2 − 1), fitted for the smallest relative error by
/// Tests/python/fit_log_polynomial.py (3.5e-8 in exact arithmetic, 9.6e-8
/// evaluated in float32).
let vLogQ: (Float, Float, Float, Float, Float, Float, Float, Float) = (
    -0.49999991059303284, 0.33333951234817505, -0.25001755356788635, 0.19962072372436523,
    -0.16570508480072021, 0.14917974174022675, -0.14307522773742676, 0.08734845370054245
)

/// The shared reduction of `vlogFinite` and `vlog2Finite`: x = 2^k·m with
/// m ∈ [√½, √2), returned as (k, log(1 + f)) with f = m − 1. Subtracting the
/// bits of √½ before the shift puts the exponent where m lands in that
/// interval, with no compare or blend. For x = 0, k = −127 and f = 0.
@inline(__always)
func vlogReduce(_ x: KVec) -> (k: KVec, log1pF: KVec) {
    let bits = unsafeBitCast(x, to: KIVec.self)
    let k = (bits &- KIVec(repeating: 0x3F35_04F3)) &>> KIVec(repeating: 23)
    let f = unsafeBitCast(bits &- (k &<< KIVec(repeating: 23)), to: KVec.self) - KVec(repeating: 1)
    var q = KVec(repeating: vLogQ.6).addingProduct(KVec(repeating: vLogQ.7), f)
    q = KVec(repeating: vLogQ.5).addingProduct(q, f)
    q = KVec(repeating: vLogQ.4).addingProduct(q, f)
    q = KVec(repeating: vLogQ.3).addingProduct(q, f)
    q = KVec(repeating: vLogQ.2).addingProduct(q, f)
    q = KVec(repeating: vLogQ.1).addingProduct(q, f)
    q = KVec(repeating: vLogQ.0).addingProduct(q, f)
    return (int32ToFloat(k), f.addingProduct(f * f, q))
}

/// Natural log for finite x ≥ 0 without the special-case selects: the core
/// of `vlog`, and used directly by the mixture kernel. log x = k·ln2 +
/// log(1 + f) (see `vlogReduce`), with k·ln2 in two parts (Cody–Waite) so
/// it adds no rounding of its own.
///
/// 0 gives −127·ln2 ≈ −88.03 (finite, so 0·log 0 is 0 with no select) and a
/// subnormal x a finite value within 1 of −88; `vlog` handles both exactly.
@inline(__always)
func vlogFinite(_ x: KVec) -> KVec {
    let (k, l) = vlogReduce(x)
    return l.addingProduct(k, KVec(repeating: vLn2Lo)).addingProduct(k, KVec(repeating: vLn2Hi))
}

/// log2 x for finite x ≥ 0: k + log(1 + f)·log2(e) in one FMA (k is exact,
/// so no two-part constant is needed). 0 gives −127; used by the mixture
/// pass, which works in base 2.
@inline(__always)
func vlog2Finite(_ x: KVec) -> KVec {
    let (k, l) = vlogReduce(x)
    return k.addingProduct(l, KVec(repeating: vLog2e))
}

/// Natural log. 0 → −inf, negative → NaN, +inf → +inf, NaN → NaN; subnormal
/// inputs are handled exactly (pre-scaled by 2^23, which `vlogFinite`'s
/// exponent then carries, corrected by 23·ln2 below).
@inline(__always)
func vlog(_ xIn: KVec) -> KVec {
    let tiny = xIn .< Float.leastNormalMagnitude
    let x = xIn.replacing(with: xIn * 8388608.0, where: tiny)  // 2^23
    var res = vlogFinite(x)
    res = res.replacing(with: res - 15.942385152878742, where: tiny)  // 23·ln2
    res = res.replacing(with: -.infinity, where: xIn .== 0)
    res = res.replacing(with: .nan, where: xIn .< 0)
    res = res.replacing(with: .infinity, where: xIn .== .infinity)
    res = res.replacing(with: xIn, where: xIn .!= xIn)
    return res
}

/// Exact Int32 → Float for |e| < 2^22 without the generic (per-lane, not
/// inlined) SIMD conversion initialiser: add the bits to 1.5·2^23 and subtract.
@inline(__always)
func int32ToFloat(_ e: KIVec) -> KVec {
    let magicF = KVec(repeating: vRoundMagic)
    let magic = unsafeBitCast(magicF, to: KIVec.self)
    return unsafeBitCast(e &+ magic, to: KVec.self) - magicF
}

/// Scalar entry points for tests and small, non-hot code paths.
public enum VectorMath {
    /// e^x of every element (see `vexp`), a vector at a time.
    public static func exp(_ x: [Float]) -> [Float] { lanewise(x, vexp) }
    /// The natural log of every element (see `vlog`), a vector at a time.
    public static func log(_ x: [Float]) -> [Float] { lanewise(x, vlog) }
    public static func exp(_ x: Float) -> Float { vexp(KVec(repeating: x))[0] }
    public static func log(_ x: Float) -> Float { vlog(KVec(repeating: x))[0] }
    /// 2^y for y ≤ 0 and log2 x for finite x ≥ 0, lane 0 of the kernels'
    /// vector versions (for accuracy tests).
    public static func exp2NonPositive(_ y: Float) -> Float { vexp2NonPositive(KVec(repeating: y))[0] }
    public static func log2Finite(_ x: Float) -> Float { vlog2Finite(KVec(repeating: x))[0] }
    /// Σ x_i (SIMD, Double-flushed): the plain-read reference for benchmarks.
    public static func sum(_ x: UnsafePointer<Float>, count: Int) -> Double { plainSum(x, count) }

    private static func lanewise(_ x: [Float], _ f: (KVec) -> KVec) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        var i = 0
        while i < x.count {
            var v = KVec(repeating: 1)
            for l in 0..<KVec.scalarCount where i + l < x.count { v[l] = x[i + l] }
            let y = f(v)
            for l in 0..<KVec.scalarCount where i + l < x.count { out[i + l] = y[l] }
            i += KVec.scalarCount
        }
        return out
    }
}
