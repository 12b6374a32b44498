// distill-bench-kernels: times every loss kernel on deterministic random
// float32 logits and compares with the machine's plain read bandwidth.
//
// Usage: distill-bench-kernels [--n 4096] [--v 32000,151936] [--runs 5]
//          [--tau 2] [--losses forward_kl,jsd,...] [--npy-dir DIR]
//          [--npy-rows R] [--max-gb 12] [--seed 1]
//
// With --npy-dir it writes teacher_R_V.npy, student_R_V.npy (float32 [R,V],
// the first R rows, R = --npy-rows or N) and labels_R_V.npy (int64 [R,1]) so
// Tests/python/bench_kernels_reference.py reads the same data.
// Each measurement is printed in a table and as one JSON line ("JSON {...}").
// If 2·N·V·4 bytes exceeds --max-gb, N is reduced for that V (and said so).

import Dispatch
import DistillMath
import DistillTensor
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

struct Options {
    var n = 4096
    var vocabs = [32000, 151936]
    var runs = 5
    var tau = 2.0
    var losses: [LossName] = LossName.allCases
    var npyDir: String?
    var npyRows: Int?
    var maxGB = 12.0
    var seed: UInt64 = 1
}

func parseOptions() -> Options {
    var o = Options()
    var args = Array(CommandLine.arguments.dropFirst())
    func next() -> String {
        guard !args.isEmpty else { fatalError("missing value") }
        return args.removeFirst()
    }
    while !args.isEmpty {
        let a = args.removeFirst()
        switch a {
        case "--n": o.n = Int(next())!
        case "--v": o.vocabs = next().split(separator: ",").map { Int($0)! }
        case "--runs": o.runs = Int(next())!
        case "--tau": o.tau = Double(next())!
        case "--losses": o.losses = next().split(separator: ",").map { LossName(parsing: String($0))! }
        case "--npy-dir": o.npyDir = next()
        case "--npy-rows": o.npyRows = Int(next())!
        case "--max-gb": o.maxGB = Double(next())!
        case "--seed": o.seed = UInt64(next())!
        case "-h", "--help":
            print(
                "distill-bench-kernels [--n N] [--v V1,V2] [--runs R] [--tau T] [--losses a,b] [--npy-dir DIR] [--npy-rows R] [--max-gb G] [--seed S]"
            )
            exit(0)
        default: fatalError("unknown argument \(a)")
        }
    }
    return o
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : 0.5 * (s[s.count / 2 - 1] + s[s.count / 2])
}

/// splitmix64: a deterministic stream per row, so rows can be filled in parallel.
@inline(__always) func mix(_ x: inout UInt64) -> UInt64 {
    x &+= 0x9E37_79B9_7F4A_7C15
    var z = x
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// Approximately normal values (sum of 4 uniforms, centred, unit variance).
@inline(__always) func gauss(_ s: inout UInt64) -> Float {
    let r = mix(&s)
    let a = Float(r & 0xFFFF), b = Float((r >> 16) & 0xFFFF), c = Float((r >> 32) & 0xFFFF), d = Float(r >> 48)
    return ((a + b + c + d) / 65536 - 2) * 1.7320508
}

/// Teacher logits ~ 3·N(0,1); student = teacher + 1.5·N(0,1), so the two are
/// related the way a partly trained student is.
func generate(n: Int, v: Int, seed: UInt64) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
    let t = UnsafeMutablePointer<Float>.allocate(capacity: n * v)
    let s = UnsafeMutablePointer<Float>.allocate(capacity: n * v)
    // Unchecked: each iteration writes only its own row.
    nonisolated(unsafe) let tp = t, sp = s
    DispatchQueue.concurrentPerform(iterations: n) { r in
        var st = seed &* 0x1000_0000_01B3 &+ UInt64(r) &* 0x9E37_79B9
        for i in 0..<v {
            let z = 3 * gauss(&st)
            tp[r * v + i] = z
            sp[r * v + i] = z + 1.5 * gauss(&st)
        }
    }
    return (t, s)
}

func writeNpy(path: String, descr: String, shape: [Int], bytes: UnsafeRawPointer, count: Int) {
    let shapeStr = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeStr), }"
    let total = 10 + header.utf8.count + 1
    header += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
    guard let f = fopen(path, "wb") else { fatalError("cannot write \(path)") }
    var pre: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
    let hl = UInt16(header.utf8.count)
    pre += [UInt8(hl & 0xFF), UInt8(hl >> 8)]
    pre += Array(header.utf8)
    _ = pre.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
    var off = 0
    while off < count {
        let c = Swift.min(1 << 26, count - off)
        _ = fwrite(bytes + off, 1, c, f)
        off += c
    }
    fclose(f)
}

/// One plain read of both buffers: a SIMD sum on every core. Returns the
/// seconds it took.
func timeRead(_ bufs: [UnsafeMutablePointer<Float>], count: Int) -> Double {
    let workers = ProcessInfo.processInfo.activeProcessorCount
    let t0 = now()
    let parts = UnsafeMutableBufferPointer<Double>.allocate(capacity: workers)
    // Unchecked: each worker writes only its own slot of `parts` and reads the buffers.
    nonisolated(unsafe) let p = parts, buffers = bufs
    DispatchQueue.concurrentPerform(iterations: workers) { w in
        let per = count / workers
        let start = w * per, len = w == workers - 1 ? count - start : per
        var s = 0.0
        for b in buffers { s += VectorMath.sum(UnsafePointer(b + start), count: len) }
        p[w] = s
    }
    let dt = now() - t0
    if parts.reduce(0, +) == 42 { print("") }
    parts.deallocate()
    return dt
}

let opts = parseOptions()
let cores = ProcessInfo.processInfo.activeProcessorCount
print("distill-bench-kernels: N=\(opts.n) V=\(opts.vocabs) runs=\(opts.runs) tau=\(opts.tau) cores=\(cores)")
for v in opts.vocabs {
    var n = opts.n
    while Double(2 * n * v * 4) / 1e9 > opts.maxGB && n > 1 { n /= 2 }
    if n != opts.n {
        print("NOTE: V=\(v): using N=\(n) rows instead of \(opts.n) (teacher+student would exceed --max-gb \(opts.maxGB) GB)")
    }
    let t0 = now()
    let (t, s) = generate(n: n, v: v, seed: opts.seed)
    print(String(format: "generated %d x %d float32 logits (x2, %.2f GB) in %.1f s", n, v, Double(2 * n * v * 4) / 1e9, now() - t0))
    var labels = [Int64](repeating: 0, count: n)
    var ls = opts.seed ^ 0xABCD
    for i in 0..<n { labels[i] = Int64(mix(&ls) % UInt64(v)) }
    if let dir = opts.npyDir {
        let r = Swift.min(opts.npyRows ?? n, n)
        writeNpy(path: "\(dir)/teacher_\(r)_\(v).npy", descr: "<f4", shape: [r, v], bytes: t, count: r * v * 4)
        writeNpy(path: "\(dir)/student_\(r)_\(v).npy", descr: "<f4", shape: [r, v], bytes: s, count: r * v * 4)
        labels.withUnsafeBytes {
            writeNpy(path: "\(dir)/labels_\(r)_\(v).npy", descr: "<i8", shape: [r, 1], bytes: $0.baseAddress!, count: r * 8)
        }
        print("wrote .npy files (first \(r) rows) to \(dir)")
        print("JSON {\"impl\":\"swift\",\"op\":\"npy\",\"n\":\(n),\"v\":\(v),\"rows\":\(r),\"dir\":\"\(dir)\"}")
    }
    let bytes = Double(2 * n * v * 4)
    let ts = TensorStorage(base: UnsafeRawPointer(t), byteCount: n * v * 4)
    let ss = TensorStorage(base: UnsafeRawPointer(s), byteCount: n * v * 4)
    let teacher = ModelOutputs(
        kind: .logits, layout: .dense(values: try! Tensor(storage: ts, dtype: .float32, shape: [n, 1, v])),
        examples: n, positions: 1, vocab: v)
    let student = ModelOutputs(
        kind: .logits, layout: .dense(values: try! Tensor(storage: ss, dtype: .float32, shape: [n, 1, v])),
        examples: n, positions: 1, vocab: v)
    let labelTensor = Tensor(int64: labels, shape: [n, 1])
    // Forward KL first, so every other loss can be quoted relative to it.
    var order = opts.losses.filter { $0 == .forwardKL }
    order += opts.losses.filter { $0 != .forwardKL }
    let configs = order.map { LossConfig(name: $0, temperature: opts.tau, reduction: .batchmean, labels: labelTensor) }
    // The runs are interleaved: each round times the plain read and then every
    // loss once, so that a neighbour's load on a shared machine hits them all
    // alike and the ratios (to the read, to forward KL) compare like with like.
    var values = [Double](repeating: 0, count: order.count)
    for (k, cfg) in configs.enumerated() {  // warm-up
        values[k] = try! LossScorer.score(teacher: teacher, student: student, config: cfg).aggregate ?? 0
    }
    var readTimes: [Double] = []
    var times = [[Double]](repeating: [], count: order.count)
    for _ in 0..<opts.runs {
        readTimes.append(timeRead([t, s], count: n * v))
        for (k, cfg) in configs.enumerated() {
            let a = now()
            let res = try! LossScorer.score(teacher: teacher, student: student, config: cfg)
            times[k].append(now() - a)
            values[k] = res.aggregate ?? 0
        }
    }
    let readGBs = bytes / median(readTimes) / 1e9
    print(String(format: "plain read bandwidth (SIMD sum of teacher+student, %d threads): %.2f GB/s", cores, readGBs))
    print("JSON {\"impl\":\"swift\",\"op\":\"read\",\"n\":\(n),\"v\":\(v),\"gbps\":\(readGBs)}")
    let fklTime = order.firstIndex(of: .forwardKL).map { median(times[$0]) }
    print("V=\(v) N=\(n)")
    print("loss              tau   median ms    GB/s     rows/s   x read-bw   x fwd-KL  value")
    for (k, loss) in order.enumerated() {
        let m = median(times[k])
        let gbps = bytes / m / 1e9
        let rps = Double(n) / m
        let rel = fklTime.map { m / $0 }
        let relStr = rel.map { String(format: "%8.2f", $0) } ?? "     n/a"
        print(
            loss.rawValue.padding(toLength: 16, withPad: " ", startingAt: 0)
                + String(format: " %5.2f %10.1f %8.2f %10.0f %10.2f  ", opts.tau, m * 1e3, gbps, rps, gbps / readGBs)
                + relStr + String(format: "  %.6f", values[k]))
        let relJSON = rel.map { "\($0)" } ?? "null"
        print(
            "JSON {\"impl\":\"swift\",\"op\":\"\(loss.rawValue)\",\"n\":\(n),\"v\":\(v),\"tau\":\(opts.tau),\"median_s\":\(m),\"min_s\":\(times[k].min()!),\"gbps\":\(gbps),\"rows_per_s\":\(rps),\"ratio_to_read\":\(gbps / readGBs),\"ratio_to_forward_kl\":\(relJSON),\"read_gbps\":\(readGBs),\"value\":\(values[k])}"
        )
    }
    t.deallocate()
    s.deallocate()
}
