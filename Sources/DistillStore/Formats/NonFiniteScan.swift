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
/// lanes (SIMD within a register): for each lane, `(x & exponent) + (sign − exponent)`
/// has the lane's top bit set exactly when the exponent is all ones, so one OR per
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
            case .float16: scan16(p, count: n / 2, exponent: 0x7C00, into: &counts)
            case .bfloat16: scan16(p, count: n / 2, exponent: 0x7F80, into: &counts)
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

    static func scan32(_ p: UnsafeRawPointer, count n: Int, into c: inout NonFiniteCounts) {
        scan(p, count: n, exponent: UInt32(0x7F80_0000), into: &c)
    }

    /// float16 (exponent 0x7C00) or bfloat16 (0x7F80).
    static func scan16(_ p: UnsafeRawPointer, count n: Int, exponent: UInt16, into c: inout NonFiniteCounts) {
        scan(p, count: n, exponent: exponent, into: &c)
    }

    /// Counts one value by its bits: all exponent bits set is a NaN (some mantissa bit set)
    /// or an infinity (the sign says which).
    @inline(__always)
    private static func classify<Lane: FixedWidthInteger & UnsignedInteger>(
        _ x: Lane, exponent: Lane, _ c: inout NonFiniteCounts
    ) {
        guard x & exponent == exponent else { return }
        let sign: Lane = 1 << (Lane.bitWidth - 1)
        if x & ~(exponent | sign) != 0 {
            c.nan += 1
        } else if x & sign != 0 {
            c.negInf += 1
        } else {
            c.posInf += 1
        }
    }

    /// Counts the non-finite values among `n` floats whose bits are `Lane` (UInt32 for
    /// float32, UInt16 for float16 and bfloat16) and whose exponent bits are `exponent`.
    ///
    /// Values before the first 8-byte boundary and after the last whole word are
    /// classified one by one; the words between are tested 1024 at a time.
    static func scan<Lane: FixedWidthInteger & UnsignedInteger>(
        _ p: UnsafeRawPointer, count n: Int, exponent: Lane, into c: inout NonFiniteCounts
    ) {
        let width = MemoryLayout<Lane>.size
        let lanes = 8 / width
        let x = p.bindMemory(to: Lane.self, capacity: n)
        var i = 0
        while i < n && (Int(bitPattern: p) + i * width) & 7 != 0 {
            classify(x[i], exponent: exponent, &c)
            i += 1
        }
        let words = (n - i) / lanes
        let w = (p + i * width).bindMemory(to: UInt64.self, capacity: words)
        // Per lane: its exponent bits, what carries into its sign bit exactly when they
        // are all ones, and that sign bit.
        let sign: Lane = 1 << (Lane.bitWidth - 1)
        var mask: UInt64 = 0
        var low: UInt64 = 0
        var high: UInt64 = 0
        for lane in 0..<lanes {
            let shift = UInt64(lane * Lane.bitWidth)
            mask |= UInt64(exponent) << shift
            low |= UInt64(sign - exponent) << shift
            high |= UInt64(sign) << shift
        }
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
                for j in (i + wi * lanes)..<(i + end * lanes) { classify(x[j], exponent: exponent, &c) }
            }
            wi = end
        }
        var j = i + words * lanes
        while j < n {
            classify(x[j], exponent: exponent, &c)
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
