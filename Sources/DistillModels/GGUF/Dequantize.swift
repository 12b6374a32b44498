/// Converts GGUF tensor data to float32.
///
/// Each block type is decoded as llama.cpp's reference code defines it, with the multiplications
/// and additions in the same order and never fused, so the results are the same floats the `gguf`
/// Python package's `dequantize` gives (the tests compare bit patterns). The formulas, for a
/// block's quantised integers `q`:
///
/// - Q8_0: `d·q`, q a signed byte; Q4_0: `d·(q − 8)`, q a nibble; Q5_0: `d·(q − 16)`, q five bits.
/// - Q4_1: `d·q + m`; Q5_1: `d·q + m` with five-bit q.
/// - Q4_K: 8 sub-blocks of 32 with six-bit scale `s` and minimum `n`: `(d·s)·q − (dmin·n)`.
/// - Q6_K: 16 sub-blocks of 16 with a signed byte scale `s`: `(d·s)·(q − 32)`, q six bits.
///
/// Nibble-packed blocks put the low nibbles of their bytes first (elements 0 to 15 of a 32-block)
/// and the high nibbles after.
enum Dequantize {
    /// Converts `count` elements of `type` (a whole number of blocks) at `source` into `destination`.
    /// `type.stored` must not be nil.
    static func run(_ type: GGMLType, _ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutablePointer<Float>) {
        let (blockSize, typeSize) = type.layout
        let blocks = count / blockSize
        switch type {
        case .f32: UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * 4)
        case .f16: f16(source, count, destination)
        case .bf16: bf16(source, count, destination)
        case .q8_0: for b in 0..<blocks { q8_0(source + b * typeSize, destination + b * blockSize) }
        case .q4_0: for b in 0..<blocks { q4_0(source + b * typeSize, destination + b * blockSize) }
        case .q4_1: for b in 0..<blocks { q4_1(source + b * typeSize, destination + b * blockSize) }
        case .q5_0: for b in 0..<blocks { q5_0(source + b * typeSize, destination + b * blockSize) }
        case .q5_1: for b in 0..<blocks { q5_1(source + b * typeSize, destination + b * blockSize) }
        case .q4_K: for b in 0..<blocks { q4_K(source + b * typeSize, destination + b * blockSize) }
        case .q6_K: for b in 0..<blocks { q6_K(source + b * typeSize, destination + b * blockSize) }
        default: preconditionFailure("no float32 conversion for \(type.name)")
        }
    }

    // MARK: - Half precision

    /// IEEE half to float, exactly: the half's exponent and mantissa shifted into a float's
    /// places read as a float 2^112 too small (subnormal halves land on float subnormals), so one
    /// multiplication by 2^112 rebiases every finite value; infinities and NaNs keep their payload
    /// under an all-ones exponent.
    @inline(__always)
    static func half(_ h: SIMD8<UInt16>) -> SIMD8<Float> {
        let x = SIMD8<UInt32>(truncatingIfNeeded: h)
        let magnitude = x & 0x7FFF
        let shifted = magnitude &<< 13
        let finite = unsafeBitCast(unsafeBitCast(shifted, to: SIMD8<Float>.self) * 0x1p112, to: SIMD8<UInt32>.self)
        var out = finite
        out.replace(with: shifted | 0x7F80_0000, where: magnitude .>= 0x7C00)
        return unsafeBitCast(out | ((x & 0x8000) &<< 16), to: SIMD8<Float>.self)
    }

    /// One half, the same way as the vector form.
    @inline(__always)
    static func half(_ h: UInt16) -> Float {
        let x = UInt32(h)
        let magnitude = x & 0x7FFF
        let shifted = magnitude << 13
        let bits = magnitude >= 0x7C00 ? shifted | 0x7F80_0000 : (Float(bitPattern: shifted) * 0x1p112).bitPattern
        return Float(bitPattern: bits | ((x & 0x8000) << 16))
    }

    @inline(__always)
    static func half(at p: UnsafeRawPointer) -> Float {
        half(UInt16(littleEndian: p.loadUnaligned(as: UInt16.self)))
    }

    static func f16(_ source: UnsafeRawPointer, _ count: Int, _ out: UnsafeMutablePointer<Float>) {
        let raw = UnsafeMutableRawPointer(out)
        var i = 0
        while i + 8 <= count {
            let h = source.loadUnaligned(fromByteOffset: i * 2, as: SIMD8<UInt16>.self)
            raw.storeBytes(of: half(h), toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count {
            out[i] = half(at: source + i * 2)
            i += 1
        }
    }

    static func bf16(_ source: UnsafeRawPointer, _ count: Int, _ out: UnsafeMutablePointer<Float>) {
        let raw = UnsafeMutableRawPointer(out)
        var i = 0
        while i + 8 <= count {
            let h = SIMD8<UInt32>(truncatingIfNeeded: source.loadUnaligned(fromByteOffset: i * 2, as: SIMD8<UInt16>.self))
            raw.storeBytes(of: h &<< 16, toByteOffset: i * 4, as: SIMD8<UInt32>.self)
            i += 8
        }
        while i < count {
            out[i] = Float(bitPattern: UInt32(source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) << 16)
            i += 1
        }
    }

    // MARK: - 32-element blocks

    @inline(__always)
    static func floats(_ v: SIMD16<UInt8>) -> SIMD16<Float> {
        SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: v))
    }

    @inline(__always)
    static func floats(_ v: SIMD16<Int8>) -> SIMD16<Float> {
        SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: v))
    }

    @inline(__always)
    static func store(_ v: SIMD16<Float>, _ out: UnsafeMutablePointer<Float>, _ at: Int) {
        UnsafeMutableRawPointer(out).storeBytes(of: v, toByteOffset: at * 4, as: SIMD16<Float>.self)
    }

    /// Q8_0: half d, then 32 signed bytes.
    @inline(__always)
    static func q8_0(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = half(at: p)
        store(floats(p.loadUnaligned(fromByteOffset: 2, as: SIMD16<Int8>.self)) * d, out, 0)
        store(floats(p.loadUnaligned(fromByteOffset: 18, as: SIMD16<Int8>.self)) * d, out, 16)
    }

    /// Q4_0: half d, then 16 bytes of nibbles.
    @inline(__always)
    static func q4_0(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = half(at: p)
        let q = p.loadUnaligned(fromByteOffset: 2, as: SIMD16<UInt8>.self)
        let eight = SIMD16<Float>(repeating: 8)
        store(d * (floats(q & 0x0F) - eight), out, 0)
        store(d * (floats(q &>> 4) - eight), out, 16)
    }

    /// Q4_1: half d, half m, then 16 bytes of nibbles.
    @inline(__always)
    static func q4_1(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = half(at: p)
        let m = half(at: p + 2)
        let q = p.loadUnaligned(fromByteOffset: 4, as: SIMD16<UInt8>.self)
        store(d * floats(q & 0x0F) + m, out, 0)
        store(d * floats(q &>> 4) + m, out, 16)
    }

    /// The fifth bits of a Q5 block: bit `e` of the little-endian `qh` belongs to element `e`.
    @inline(__always)
    static func fifthBits(_ qh: UInt32) -> (SIMD16<UInt8>, SIMD16<UInt8>) {
        let lanes = SIMD16<UInt32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
        let all = SIMD16<UInt32>(repeating: qh)
        let low = (all &>> lanes) & 1
        let high = (all &>> (lanes &+ 16)) & 1
        return (SIMD16<UInt8>(truncatingIfNeeded: low) &<< 4, SIMD16<UInt8>(truncatingIfNeeded: high) &<< 4)
    }

    /// Q5_0: half d, uint32 of fifth bits, then 16 bytes of nibbles.
    @inline(__always)
    static func q5_0(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = half(at: p)
        let (h0, h1) = fifthBits(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self)))
        let q = p.loadUnaligned(fromByteOffset: 6, as: SIMD16<UInt8>.self)
        let sixteen = SIMD16<Float>(repeating: 16)
        store(d * (floats((q & 0x0F) | h0) - sixteen), out, 0)
        store(d * (floats((q &>> 4) | h1) - sixteen), out, 16)
    }

    /// Q5_1: half d, half m, uint32 of fifth bits, then 16 bytes of nibbles.
    @inline(__always)
    static func q5_1(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = half(at: p)
        let m = half(at: p + 2)
        let (h0, h1) = fifthBits(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
        let q = p.loadUnaligned(fromByteOffset: 8, as: SIMD16<UInt8>.self)
        store(d * floats((q & 0x0F) | h0) + m, out, 0)
        store(d * floats((q &>> 4) | h1) + m, out, 16)
    }

    // MARK: - 256-element super-blocks

    /// Q4_K: half d, half dmin, 12 bytes of packed six-bit scales and minimums, 128 bytes of nibbles.
    /// Sub-block `2g + s` takes the low (s = 0) or high (s = 1) nibbles of bytes 32g to 32g + 31.
    static func q4_K(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = half(at: p)
        let dmin = half(at: p + 2)
        let s = p + 4
        func byte(_ i: Int) -> UInt8 { s.load(fromByteOffset: i, as: UInt8.self) }
        for g in 0..<4 {
            let qs = p + 16 + g * 32
            let lo0 = qs.loadUnaligned(as: SIMD16<UInt8>.self)
            let lo1 = qs.loadUnaligned(fromByteOffset: 16, as: SIMD16<UInt8>.self)
            for half in 0..<2 {
                let j = 2 * g + half
                let scale: UInt8
                let minimum: UInt8
                if j < 4 {
                    scale = byte(j) & 0x3F
                    minimum = byte(j + 4) & 0x3F
                } else {
                    scale = (byte(j + 4) & 0x0F) | ((byte(j - 4) >> 2) & 0x30)
                    minimum = (byte(j + 4) >> 4) | ((byte(j) >> 2) & 0x30)
                }
                let ds = d * Float(scale)
                let dm = dmin * Float(minimum)
                let a = half == 0 ? lo0 & 0x0F : lo0 &>> 4
                let b = half == 0 ? lo1 & 0x0F : lo1 &>> 4
                store(ds * floats(a) - dm, out, j * 32)
                store(ds * floats(b) - dm, out, j * 32 + 16)
            }
        }
    }

    /// Q6_K: 128 bytes of low nibbles, 64 bytes of high bit pairs, 16 signed byte scales, half d.
    /// Element `128h + 32m + i` takes nibble `m / 2` of low byte `64h + 32(m % 2) + i` and bit pair
    /// `m` of high byte `32h + i`; its scale is number `(128h + 32m + i) / 16`.
    static func q6_K(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = half(at: p + 208)
        let thirtyTwo = SIMD16<Float>(repeating: 32)
        for h in 0..<2 {
            let ql = p + 64 * h
            let qh = p + 128 + 32 * h
            for m in 0..<4 {
                for part in 0..<2 {
                    let i = 16 * part
                    let low = ql.loadUnaligned(fromByteOffset: 32 * (m % 2) + i, as: SIMD16<UInt8>.self)
                    let high = qh.loadUnaligned(fromByteOffset: i, as: SIMD16<UInt8>.self)
                    let nibble = m < 2 ? low & 0x0F : low &>> 4
                    let pair = (high &>> UInt8(2 * m)) & 0x03
                    let element = 128 * h + 32 * m + i
                    let scale = Float(p.load(fromByteOffset: 192 + element / 16, as: Int8.self))
                    store((d * scale) * (floats(nibble | (pair &<< 4)) - thirtyTwo), out, element)
                }
            }
        }
    }
}
