/// Vectorised float32 `exp` and `log` used by the row kernels.
///
/// Both follow the classic Cody–Waite range reduction + minimax polynomial
/// scheme (coefficients of the Cephes single-precision routines), written on
/// `SIMD16<Float>` so one call works on 16 lanes. They avoid `rounded()` and
/// `frexp` because on the baseline x86-64 target those become per-lane library
/// calls; the bit tricks below stay in vector registers.
///
/// Accuracy (measured in `VectorMathTests` against `Double` over the whole
/// accepted range): about 1–2 ulp, i.e. relative error below 2.5e-7.

public typealias FloatVector = SIMD16<Float>
typealias IntVector = SIMD16<Int32>

let vLog2e: Float = 1.44269504088896341
/// ln 2 split so that `n * ln2Hi` is exact for |n| < 2^9 (Cody–Waite).
let vLn2Hi: Float = 0.693359375
let vLn2Lo: Float = -2.12194440e-4
/// 1.5 · 2^23: adding it rounds a float of magnitude < 2^22 to an integer
/// (round-to-nearest-even) and leaves that integer in the low mantissa bits.
let vRoundMagic: Float = 12582912.0

/// Below this `exp` returns exactly 0: the true result would be subnormal
/// (< 2^-126), which no loss sum can distinguish from 0 next to terms ≥ 1.
public let vexpLowerLimit: Float = -87.33654
/// Above this `exp` returns +inf. The true overflow point is 88.7228; the
/// last 0.35 is given up so that the scale 2^n never needs n = 128.
public let vexpUpperLimit: Float = 88.37626

/// e^x for x ≤ 0 (the only case the softmax kernels need, after the row
/// maximum has been subtracted). −inf → 0, NaN → NaN.
@inline(__always)
func vexpNonPositive(_ x: FloatVector) -> FloatVector {
    let t = FloatVector(repeating: vRoundMagic).addingProduct(x, FloatVector(repeating: vLog2e))
    let n = t - vRoundMagic
    // r = x − n·ln2 in two steps keeps r exact to float precision.
    var r = x.addingProduct(n, FloatVector(repeating: -vLn2Hi))
    r = r.addingProduct(n, FloatVector(repeating: -vLn2Lo))
    let r2 = r * r
    var y = FloatVector(repeating: 1.3981999507e-3).addingProduct(FloatVector(repeating: 1.9875691500e-4), r)
    y = FloatVector(repeating: 8.3334519073e-3).addingProduct(y, r)
    y = FloatVector(repeating: 4.1665795894e-2).addingProduct(y, r)
    y = FloatVector(repeating: 1.6666665459e-1).addingProduct(y, r)
    y = FloatVector(repeating: 5.0000001201e-1).addingProduct(y, r)
    y = (r + 1).addingProduct(y, r2)
    // 2^n built directly in the exponent field.
    let nBits = unsafeBitCast(t, to: IntVector.self) &- unsafeBitCast(FloatVector(repeating: vRoundMagic), to: IntVector.self)
    let scale = unsafeBitCast((nBits &+ 127) &<< 23, to: FloatVector.self)
    let result = y * scale
    return result.replacing(with: 0, where: x .< vexpLowerLimit)
}

/// e^x over the whole float range: 0 below `vexpLowerLimit`, +inf above
/// `vexpUpperLimit`, NaN for NaN.
@inline(__always)
func vexp(_ x: FloatVector) -> FloatVector {
    let big = x .> vexpUpperLimit
    let clamped = x.replacing(with: 0, where: big)
    return vexpNonPositive(clamped).replacing(with: .infinity, where: big)
}

/// Natural log. 0 → −inf, negative → NaN, +inf → +inf, NaN → NaN; subnormal
/// inputs are handled exactly (pre-scaled by 2^23).
@inline(__always)
func vlog(_ xIn: FloatVector) -> FloatVector {
    let tiny = xIn .< Float.leastNormalMagnitude
    var x = xIn.replacing(with: xIn * 8388608.0, where: tiny)   // 2^23
    var bits = unsafeBitCast(x, to: IntVector.self)
    // Exponent e and mantissa m in [0.5, 1).
    var e = (bits &>> 23) &- 126
    e = e.replacing(with: e &- 23, where: tiny)
    bits = (bits & 0x007F_FFFF) | 0x3F00_0000
    var m = unsafeBitCast(bits, to: FloatVector.self)
    // Move m to [√½, √2) so the polynomial argument is centred on 0.
    let small = m .< 0.707106781186547524
    e = e.replacing(with: e &- 1, where: small)
    m = m.replacing(with: m + m, where: small)
    x = m - 1
    let ef = int32ToFloat(e)
    let z = x * x
    var y = FloatVector(repeating: 7.0376836292e-2)
    y = y * x - 1.1514610310e-1
    y = y * x + 1.1676998740e-1
    y = y * x - 1.2420140846e-1
    y = y * x + 1.4249322787e-1
    y = y * x - 1.6668057665e-1
    y = y * x + 2.0000714765e-1
    y = y * x - 2.4999993993e-1
    y = y * x + 3.3333331174e-1
    y = y * x * z
    y = y + ef * vLn2Lo
    y = y - 0.5 * z
    var res = x + y
    res = res + ef * vLn2Hi
    res = res.replacing(with: -.infinity, where: xIn .== 0)
    res = res.replacing(with: .nan, where: xIn .< 0)
    res = res.replacing(with: .infinity, where: xIn .== .infinity)
    res = res.replacing(with: xIn, where: xIn .!= xIn)
    return res
}

/// Exact Int32 → Float for |e| < 2^22 without the generic (per-lane, not
/// inlined) SIMD conversion initialiser: add the bits to 1.5·2^23 and subtract.
@inline(__always)
func int32ToFloat(_ e: IntVector) -> FloatVector {
    let magic = unsafeBitCast(FloatVector(repeating: vRoundMagic), to: IntVector.self)
    return unsafeBitCast(e &+ magic, to: FloatVector.self) - vRoundMagic
}

/// Scalar entry points for tests and small, non-hot code paths.
public enum VectorMath {
    /// Lane-wise e^x (see `vexp`).
    public static func exp(_ x: FloatVector) -> FloatVector { vexp(x) }
    /// Lane-wise natural log (see `vlog`).
    public static func log(_ x: FloatVector) -> FloatVector { vlog(x) }
    public static func exp(_ x: Float) -> Float { vexp(FloatVector(repeating: x))[0] }
    public static func log(_ x: Float) -> Float { vlog(FloatVector(repeating: x))[0] }
    /// Σ x_i (SIMD, Double-flushed): the plain-read reference for benchmarks.
    public static func sum(_ x: UnsafePointer<Float>, count: Int) -> Double { plainSum(x, count) }
}
