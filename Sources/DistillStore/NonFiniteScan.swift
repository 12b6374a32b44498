import DistillTensor

/// How many non-finite values a tensor holds. −∞ is counted apart: it is a
/// legitimate masked entry for logits and logprobs.
public struct NonFiniteCounts: Sendable, Equatable {
    public var nan = 0
    public var posInf = 0
    public var negInf = 0

    public init(nan: Int = 0, posInf: Int = 0, negInf: Int = 0) {
        self.nan = nan
        self.posInf = posInf
        self.negInf = negInf
    }

    public static func + (a: NonFiniteCounts, b: NonFiniteCounts) -> NonFiniteCounts {
        NonFiniteCounts(nan: a.nan + b.nan, posInf: a.posInf + b.posInf, negInf: a.negInf + b.negInf)
    }

    public var total: Int { nan + posInf + negInf }
}

/// Reports progress as a fraction of all bytes to scan and polls for cancellation.
final class ScanProgress {
    let total: Int
    var done = 0
    let progress: ((Double) -> Void)?
    let isCancelled: (() -> Bool)?

    init(total: Int, progress: ((Double) -> Void)?, isCancelled: (() -> Bool)?) {
        self.total = total
        self.progress = progress
        self.isCancelled = isCancelled
    }

    func advance(_ bytes: Int) throws {
        done += bytes
        if let isCancelled, isCancelled() { throw CancellationError() }
        progress?(total == 0 ? 1 : min(1, Double(done) / Double(total)))
    }
}

/// Counts NaN, +∞ and −∞ in a float tensor's bytes.
///
/// The bulk test works on 64-bit words holding 2 float32 or 4 float16/bfloat16
/// lanes (SIMD within a register): for each lane, `(x & expMask) + expLow` has
/// the lane's top bit set exactly when the exponent is all ones, so one OR per
/// word accumulates over a block and only blocks that flag anything are
/// classified element by element. Optimised builds vectorise the word loop.
///
/// The bytes are scanned in 8 MiB chunks; after each chunk the progress
/// callback runs, cancellation is polled (throwing `CancellationError`), and a
/// mapped file's pages for that chunk are released from the resident set.
enum NonFiniteScanner {
    static let chunkBytes = 8 << 20

    static func scan(
        _ storage: TensorStorage, dtype: ScalarType, map: MappedFile?, progress: ScanProgress
    ) throws -> NonFiniteCounts {
        var counts = NonFiniteCounts()
        let width = dtype.byteWidth
        let total = storage.byteCount / width * width
        var offset = 0
        if let map, let mb = map.base {
            map.adviseSequential(offset: storage.base - mb, count: total)
        }
        while offset < total {
            let n = min(chunkBytes, total - offset)
            let p = storage.base + offset
            if let map, let mb = map.base, offset + n < total {
                map.adviseWillNeed(offset: p + n - mb, count: min(chunkBytes, total - offset - n))
            }
            switch dtype {
            case .float32: scan32(p, count: n / 4, into: &counts)
            case .float16: scan16(p, count: n / 2, exp: 0x7C00, into: &counts)
            case .bfloat16: scan16(p, count: n / 2, exp: 0x7F80, into: &counts)
            case .float64: scan64(p, count: n / 8, into: &counts)
            default: break
            }
            if let map, let mb = map.base {
                map.release(offset: p - mb, count: n)
            }
            offset += n
            try progress.advance(n)
        }
        return counts
    }

    @inline(__always)
    private static func classify32(_ b: UInt32, _ c: inout NonFiniteCounts) {
        guard b & 0x7F80_0000 == 0x7F80_0000 else { return }
        if b & 0x007F_FFFF != 0 {
            c.nan += 1
        } else if b & 0x8000_0000 != 0 {
            c.negInf += 1
        } else {
            c.posInf += 1
        }
    }

    @inline(__always)
    private static func classify16(_ h: UInt16, exp: UInt16, _ c: inout NonFiniteCounts) {
        guard h & exp == exp else { return }
        if h & ~(exp | 0x8000) != 0 {
            c.nan += 1
        } else if h & 0x8000 != 0 {
            c.negInf += 1
        } else {
            c.posInf += 1
        }
    }

    static func scan32(_ p: UnsafeRawPointer, count n: Int, into c: inout NonFiniteCounts) {
        let f = p.bindMemory(to: UInt32.self, capacity: n)
        var i = 0
        while i < n && (Int(bitPattern: p) + i * 4) & 7 != 0 {
            classify32(f[i], &c)
            i += 1
        }
        let words = (n - i) / 2
        let w = (p + i * 4).bindMemory(to: UInt64.self, capacity: words)
        let mask: UInt64 = 0x7F80_0000_7F80_0000
        let low: UInt64 = 0x0080_0000_0080_0000
        let high: UInt64 = 0x8000_0000_8000_0000
        var wi = 0
        while wi < words {
            let end = min(wi + 1024, words)
            var acc: UInt64 = 0
            var k = wi
            while k < end {
                acc |= (w[k] & mask) &+ low
                k += 1
            }
            if acc & high != 0 {
                for j in (i + wi * 2)..<(i + end * 2) { classify32(f[j], &c) }
            }
            wi = end
        }
        var j = i + words * 2
        while j < n {
            classify32(f[j], &c)
            j += 1
        }
    }

    static func scan16(_ p: UnsafeRawPointer, count n: Int, exp: UInt16, into c: inout NonFiniteCounts) {
        let h = p.bindMemory(to: UInt16.self, capacity: n)
        var i = 0
        while i < n && (Int(bitPattern: p) + i * 2) & 7 != 0 {
            classify16(h[i], exp: exp, &c)
            i += 1
        }
        let words = (n - i) / 4
        let w = (p + i * 2).bindMemory(to: UInt64.self, capacity: words)
        let e = UInt64(exp)
        let mask: UInt64 = e | e << 16 | e << 32 | e << 48
        let lowBit = UInt64(0x8000 - exp)
        let low: UInt64 = lowBit | lowBit << 16 | lowBit << 32 | lowBit << 48
        let high: UInt64 = 0x8000_8000_8000_8000
        var wi = 0
        while wi < words {
            let end = min(wi + 1024, words)
            var acc: UInt64 = 0
            var k = wi
            while k < end {
                acc |= (w[k] & mask) &+ low
                k += 1
            }
            if acc & high != 0 {
                for j in (i + wi * 4)..<(i + end * 4) { classify16(h[j], exp: exp, &c) }
            }
            wi = end
        }
        var j = i + words * 4
        while j < n {
            classify16(h[j], exp: exp, &c)
            j += 1
        }
    }

    static func scan64(_ p: UnsafeRawPointer, count n: Int, into c: inout NonFiniteCounts) {
        for i in 0..<n {
            let v = p.loadUnaligned(fromByteOffset: i * 8, as: Double.self)
            if v.isNaN {
                c.nan += 1
            } else if v == .infinity {
                c.posInf += 1
            } else if v == -.infinity {
                c.negInf += 1
            }
        }
    }
}
