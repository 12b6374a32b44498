import COpenBLAS
import DistillSync
import Foundation

/// OpenBLAS, and how its threads share the machine with the daemon's own workers.
///
/// The policy: **one matrix computation at a time, on every core.**
///
/// - OpenBLAS runs `threads` threads (default: `DISTILLD_BLAS_THREADS` when set, else the number
///   of active cores), set once for the process by `configure(threads:)`; OpenBLAS's thread count
///   is process-wide, so this is the only place that sets it.
/// - Every model computation (a forward pass, a decoding step) holds `BLAS.lane` while it runs.
///   Two requests on two models therefore take turns instead of running 2 × `threads` BLAS threads
///   on the same cores: OpenBLAS's workers busy-wait (yielding) for about 0.1 s after each call
///   before they sleep, so two concurrent callers would each find the other's spinning threads in
///   the way, and a BLAS call that oversubscribes the cores is slower than two calls in turn.
/// - The loss kernels on the daemon's pool may still run meanwhile; they are short memory-bound
///   passes, and the spinning BLAS workers yield to them. A scheduler that wants no overlap at all
///   can run model requests as updates (exclusive) rather than reads.
///
/// - Inside a pass over several tokens, attention (many small products: a block of query rows
///   against one head's keys) and the activations run on `threads` threads of the model's own,
///   heads split between them, with OpenBLAS set to one thread meanwhile (`singleThreaded`): on
///   two cores, OpenBLAS splitting each small product measured no faster than one thread, and
///   far slower when another process held a core.
///
/// With one core per BLAS thread and one computation at a time, a 512-token forward pass gets the
/// whole machine; decoding steps (matrix–vector products, `sgemv`) are memory-bound and gain less
/// from the second thread, but lose nothing by it.
public enum BLAS {
    /// Held for the whole of a model computation (see the type's policy). Public so that a caller
    /// running its own BLAS-heavy work (a benchmark) can take its turn too.
    public static let lane = Mutex<Void>()

    /// Sets OpenBLAS's thread count for the process. nil: `DISTILLD_BLAS_THREADS` if set to a positive
    /// integer, else the number of active cores. Values are clamped to 1...cores×2.
    public static func configure(threads: Int? = nil) {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        var n = threads ?? cores
        if threads == nil, let s = ProcessInfo.processInfo.environment["DISTILLD_BLAS_THREADS"], let v = Int(s), v > 0 {
            n = v
        }
        n = min(max(1, n), max(1, 2 * cores))
        openblas_set_num_threads(Int32(n))
    }

    /// OpenBLAS's current thread count.
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// The kernel family OpenBLAS chose for this CPU ("Haswell", "SkylakeX", "Cooperlake", ...).
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// Runs `body` with OpenBLAS single-threaded, for a section that runs independent small
    /// products on threads of its own. Call holding `lane` (the thread count is process-wide).
    static func singleThreaded<R>(_ body: () throws -> R) rethrows -> R {
        let n = openblas_get_num_threads()
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(n) }
        return try body()
    }

    /// Runs `body` holding `lane`.
    public static func exclusive<R>(_ body: () throws -> R) rethrows -> R {
        try lane.withLock(body)
    }
}

/// C[m, n] = alpha · op(A) · op(B) + beta · C, all row-major; op(A) is [m, k], op(B) is [k, n].
/// `transA`/`transB` say that A is stored [k, m] / B is stored [n, k].
@inline(__always)
func sgemm(
    transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
    c: UnsafeMutablePointer<Float>, ldc: Int
) {
    cblas_sgemm(
        CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// y = alpha · op(A) · x + beta · y with A stored row-major [m, n] (leading dimension `lda`);
/// op(A) = A (y has m elements, x has n) or, with `trans`, Aᵀ (y has n, x has m).
@inline(__always)
func sgemv(
    trans: Bool = false, m: Int, n: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
    x: UnsafePointer<Float>, beta: Float = 0, y: UnsafeMutablePointer<Float>
) {
    cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), alpha, a, Int32(lda), x, 1, beta, y, 1)
}

extension BLAS {
    /// The machine's measured single-precision matrix-product rate: the best of `repeats` square
    /// `sgemm`s of side `size` on the current thread count, in GFLOP/s (2·size³ operations each).
    /// For benchmarks: the share of it a forward pass reaches says how much is left on the table.
    public static func measureSgemm(size: Int = 2048, repeats: Int = 5) -> Double {
        let n = size
        let a = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        let b = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        defer {
            a.deallocate()
            b.deallocate()
            c.deallocate()
        }
        var state: UInt32 = 12345
        for i in 0..<(n * n) {
            state = state &* 1_664_525 &+ 1_013_904_223
            a[i] = Float(state >> 8) / Float(1 << 24) - 0.5
            b[i] = a[i]
        }
        return exclusive {
            sgemm(m: n, n: n, k: n, a: a, lda: n, b: b, ldb: n, c: c, ldc: n)
            var best = Double.infinity
            for _ in 0..<max(1, repeats) {
                let t0 = DispatchTime.now().uptimeNanoseconds
                sgemm(m: n, n: n, k: n, a: a, lda: n, b: b, ldb: n, c: c, ldc: n)
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            }
            return 2 * Double(n) * Double(n) * Double(n) / best / 1e9
        }
    }
}
