import DistillMath
import Foundation

/// The forward pass's element-wise work: norms, activations, RoPE, softmax. Everything else is a
/// BLAS call. Written on 16-float vectors (one zmm register with AVX-512, two ymm otherwise); the
/// exponentials are DistillMath's vector `exp`.
typealias FVec = SIMD16<Float>

@inline(__always)
func loadF(_ p: UnsafePointer<Float>, _ i: Int) -> FVec {
    UnsafeRawPointer(p + i).loadUnaligned(as: FVec.self)
}

@inline(__always)
func storeF(_ p: UnsafeMutablePointer<Float>, _ i: Int, _ v: FVec) {
    UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: FVec.self)
}

enum Kernels {
    /// Σ x[i] (float lanes, reduced in Double).
    @inline(__always)
    static func sum(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
        var acc = FVec(repeating: 0)
        var i = 0
        while i + 16 <= n {
            acc += loadF(x, i)
            i += 16
        }
        var total = 0.0
        for l in 0..<16 { total += Double(acc[l]) }
        while i < n {
            total += Double(x[i])
            i += 1
        }
        return total
    }

    /// Σ (x[i] − c)².
    @inline(__always)
    static func sumSquares(_ x: UnsafePointer<Float>, _ n: Int, minus c: Float) -> Double {
        var acc = FVec(repeating: 0)
        let cv = FVec(repeating: c)
        var i = 0
        while i + 16 <= n {
            let d = loadF(x, i) - cv
            acc.addProduct(d, d)
            i += 16
        }
        var total = 0.0
        for l in 0..<16 { total += Double(acc[l]) }
        while i < n {
            let d = x[i] - c
            total += Double(d * d)
            i += 1
        }
        return total
    }

    /// LayerNorm of each of `rows` rows of n: y = (x − mean) / √(var + ε) · w + b, with the biased
    /// variance, as `torch.nn.LayerNorm`. `y` may be `x`.
    static func layerNorm(
        _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, n: Int,
        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, epsilon: Float
    ) {
        for r in 0..<rows {
            let xr = x + r * n
            let yr = y + r * n
            let mean = Float(sum(xr, n) / Double(n))
            let variance = sumSquares(xr, n, minus: mean) / Double(n)
            let inv = Float(1 / (variance + Double(epsilon)).squareRoot())
            let mv = FVec(repeating: mean)
            let iv = FVec(repeating: inv)
            var i = 0
            while i + 16 <= n {
                storeF(yr, i, (loadF(xr, i) - mv) * iv * loadF(weight, i) + loadF(bias, i))
                i += 16
            }
            while i < n {
                yr[i] = (xr[i] - mean) * inv * weight[i] + bias[i]
                i += 1
            }
        }
    }

    /// RMSNorm of each row, as Hugging Face's Llama: y = w · (x · 1/√(mean(x²) + ε)).
    static func rmsNorm(
        _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, n: Int, weight: UnsafePointer<Float>,
        epsilon: Float
    ) {
        for r in 0..<rows {
            let xr = x + r * n
            let yr = y + r * n
            let meanSquare = sumSquares(xr, n, minus: 0) / Double(n)
            let inv = Float(1 / (meanSquare + Double(epsilon)).squareRoot())
            let iv = FVec(repeating: inv)
            var i = 0
            while i + 16 <= n {
                storeF(yr, i, loadF(weight, i) * (loadF(xr, i) * iv))
                i += 16
            }
            while i < n {
                yr[i] = weight[i] * (xr[i] * inv)
                i += 1
            }
        }
    }

    /// Elements per chunk of the activations: the argument of the exponential is staged in a
    /// buffer of this size, which stays in L1.
    static let chunk = 1024

    /// GPT-2's gelu_new in place, the tanh approximation
    /// ½x(1 + tanh(√(2/π)(x + 0.044715x³))), computed as x / (1 + e^(−2u)) with
    /// u = √(2/π)(x + 0.044715x³): the same function, since ½(1 + tanh u) = 1 / (1 + e^(−2u)), and
    /// one exponential instead of a tanh. e^(−2u) overflowing to +inf gives −0 for very negative x.
    static func geluNew(_ x: UnsafeMutablePointer<Float>, count: Int, scratch: UnsafeMutablePointer<Float>) {
        let k = FVec(repeating: Float(-2 * (2 / Double.pi).squareRoot()))
        let c = FVec(repeating: 0.044715)
        var start = 0
        while start < count {
            let n = min(chunk, count - start)
            let xs = x + start
            var i = 0
            while i + 16 <= n {
                let v = loadF(xs, i)
                storeF(scratch, i, k * v.addingProduct(c * v * v, v))
                i += 16
            }
            while i < n {
                let v = xs[i]
                scratch[i] = k[0] * (v + c[0] * v * v * v)
                i += 1
            }
            VectorMath.exp(scratch, count: n, into: scratch)
            i = 0
            while i + 16 <= n {
                storeF(xs, i, loadF(xs, i) / (loadF(scratch, i) + 1))
                i += 16
            }
            while i < n {
                xs[i] = xs[i] / (scratch[i] + 1)
                i += 1
            }
            start += n
        }
    }

    /// SwiGLU in place: gate[i] = silu(gate[i]) · up[i], with silu(g) = g / (1 + e^(−g)).
    static func swiGLU(
        _ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int, scratch: UnsafeMutablePointer<Float>
    ) {
        var start = 0
        while start < count {
            let n = min(chunk, count - start)
            let g = gate + start
            let u = up + start
            var i = 0
            while i + 16 <= n {
                storeF(scratch, i, -loadF(g, i))
                i += 16
            }
            while i < n {
                scratch[i] = -g[i]
                i += 1
            }
            VectorMath.exp(scratch, count: n, into: scratch)
            i = 0
            while i + 16 <= n {
                storeF(g, i, loadF(g, i) / (loadF(scratch, i) + 1) * loadF(u, i))
                i += 16
            }
            while i < n {
                g[i] = g[i] / (scratch[i] + 1) * u[i]
                i += 1
            }
            start += n
        }
    }

    /// Softmax of x[0..<n] in place (max subtracted first).
    @inline(__always)
    static func softmax(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        guard n > 0 else { return }
        let m = VectorMath.maximum(x, count: n)
        let total = VectorMath.expShifted(x, count: n, shift: m, into: x)
        let inv = FVec(repeating: Float(1 / total))
        var i = 0
        while i + 16 <= n {
            storeF(x, i, loadF(x, i) * inv)
            i += 16
        }
        while i < n {
            x[i] *= inv[0]
            i += 1
        }
    }

    /// log-softmax of x[0..<n] in place: x − (m + log Σ e^(x − m)), m the row's maximum, the sum in
    /// Double. A row holding +inf or NaN becomes NaN; a row of −inf stays −inf where it was.
    static func logSoftmax(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        guard n > 0 else { return }
        let m = VectorMath.maximum(x, count: n)
        guard m.isFinite else {
            for i in 0..<n { x[i] = .nan }
            return
        }
        let lse = Float(Double(m) + Foundation.log(VectorMath.sumExpShifted(x, count: n, shift: m)))
        let lv = FVec(repeating: lse)
        var i = 0
        while i + 16 <= n {
            storeF(x, i, loadF(x, i) - lv)
            i += 16
        }
        while i < n {
            x[i] -= lse
            i += 1
        }
    }

    /// Rotates each head of each row by RoPE, Hugging Face's `rotate_half` convention: dimension i
    /// is paired with i + d/2 (not 2i with 2i + 1), so for i < d/2
    ///   x'ᵢ = xᵢ·cos θᵢ − x_{i+d/2}·sin θᵢ,   x'_{i+d/2} = x_{i+d/2}·cos θᵢ + xᵢ·sin θᵢ,
    /// with θᵢ = position · inv_freqᵢ from `cos`/`sin`, one row of d/2 per row of `x`.
    static func rope(
        _ x: UnsafeMutablePointer<Float>, rows: Int, ld: Int, heads: Int, headDim: Int,
        cos: UnsafePointer<Float>, sin: UnsafePointer<Float>
    ) {
        let half = headDim / 2
        for r in 0..<rows {
            let c = cos + r * half
            let s = sin + r * half
            for h in 0..<heads {
                let a = x + r * ld + h * headDim
                let b = a + half
                var i = 0
                while i + 16 <= half {
                    let av = loadF(a, i)
                    let bv = loadF(b, i)
                    let cv = loadF(c, i)
                    let sv = loadF(s, i)
                    storeF(a, i, av * cv - bv * sv)
                    storeF(b, i, bv * cv + av * sv)
                    i += 16
                }
                while i < half {
                    let av = a[i]
                    let bv = b[i]
                    a[i] = av * c[i] - bv * s[i]
                    b[i] = bv * c[i] + av * s[i]
                    i += 1
                }
            }
        }
    }
}

/// RoPE's inverse frequencies, with the configured θ and scaling, as Hugging Face computes them.
struct Rope: Sendable {
    /// inv_freqᵢ for i < d/2, in float32 as transformers holds them.
    let inverseFrequencies: [Float]

    /// inv_freqᵢ = 1 / θ^(2i/d), rounded to float32 at each step as transformers' float32 tensors
    /// are; then `linear` divides every frequency by the factor and `llama3` divides the low
    /// frequencies (wavelength above original/low_freq_factor) by it, keeps the high ones (below
    /// original/high_freq_factor) and blends the band between.
    init(headDim: Int, theta: Double, scaling: RopeScaling?) {
        let half = headDim / 2
        var f = (0..<half).map { i -> Float in
            let exponent = Float(2 * i) / Float(headDim)
            return 1 / Float(Foundation.pow(Double(Float(theta)), Double(exponent)))
        }
        switch scaling {
        case nil:
            break
        case .linear(let factor):
            f = f.map { $0 / Float(factor) }
        case .llama3(let factor, let low, let high, let original):
            let lowWavelength = Double(original) / low
            let highWavelength = Double(original) / high
            f = f.map { v in
                let inv = Double(v)
                let wavelength = 2 * Double.pi / inv
                if wavelength < highWavelength { return v }
                if wavelength > lowWavelength { return Float(inv / factor) }
                let smooth = (Double(original) / wavelength - low) / (high - low)
                return Float((1 - smooth) * inv / factor + smooth * inv)
            }
        }
        inverseFrequencies = f
    }

    /// cos and sin of position · inv_freqᵢ for each position, [positions.count, d/2] each. The angle
    /// is the float32 product (as transformers forms it), its cosine and sine taken in Double.
    func tables(positions: [Int]) -> (cos: [Float], sin: [Float]) {
        let half = inverseFrequencies.count
        var c = [Float](repeating: 0, count: positions.count * half)
        var s = c
        for (r, p) in positions.enumerated() {
            let fp = Float(p)
            for i in 0..<half {
                let angle = Double(fp * inverseFrequencies[i])
                c[r * half + i] = Float(Foundation.cos(angle))
                s[r * half + i] = Float(Foundation.sin(angle))
            }
        }
        return (c, s)
    }
}
