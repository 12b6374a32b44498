// distill-model-check: runs a Hugging Face model directory (or a GGUF file, by its .gguf suffix)
// through DistillModels' forward pass,
// for the comparison with transformers (Tests/python/test_models_forward.py) and the model
// benchmark (Tests/bench/bench_models.py).
//
//   distill-model-check logprobs DIR --tokens 1,2,3 --out a.npy [--tokens 4,5 --out b.npy] [--batch]
//       log-softmax [T, V] of each sequence as float32 .npy; --batch runs all in one pass.
//   distill-model-check incremental DIR --tokens 1,2,3,4 --split K --out a.npy
//       the first K tokens in one pass (all positions), then one KV-cache step per token; the
//       log-softmax of every position, [T, V].
//   distill-model-check info DIR
//       one JSON line: architecture, parameters, layers, vocab, contextLength, residentBytes.
//   distill-model-check bench DIR [--length 512] [--generate 64] [--repeat 3]
//       one JSON line: forward and generation tokens/s, the forward pass's GFLOP/s, the machine's
//       sgemm GFLOP/s.
//   Common: --threads N (OpenBLAS threads; default DISTILLD_BLAS_THREADS or the core count).
//
// A model error prints "error: <code>: <message>" on stderr and exits 2; a usage error exits 64.

import DistillModels
import DistillStore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

struct Usage: Error { let message: String }

struct Options {
    var command = ""
    var directory = ""
    var tokens: [[Int]] = []
    var outputs: [String] = []
    var batch = false
    var split = 0
    var threads: Int?
    var length = 512
    var generate = 64
    var repeats = 3
}

func parse(_ arguments: [String]) throws -> Options {
    var args = arguments
    var o = Options()
    guard args.count >= 2 else { throw Usage(message: "a command and a model directory are needed") }
    o.command = args.removeFirst()
    o.directory = args.removeFirst()
    func value(_ flag: String) throws -> String {
        guard !args.isEmpty else { throw Usage(message: "\(flag) needs a value") }
        return args.removeFirst()
    }
    func integer(_ flag: String) throws -> Int {
        let s = try value(flag)
        guard let v = Int(s) else { throw Usage(message: "\(flag): '\(s)' is not an integer") }
        return v
    }
    while !args.isEmpty {
        let flag = args.removeFirst()
        switch flag {
        case "--tokens":
            let s = try value(flag)
            let ids =
                s.isEmpty
                ? []
                : try s.split(separator: ",").map { part -> Int in
                    guard let v = Int(part.trimmingCharacters(in: .whitespaces)) else {
                        throw Usage(message: "--tokens: '\(part)' is not an integer")
                    }
                    return v
                }
            o.tokens.append(ids)
        case "--out": o.outputs.append(try value(flag))
        case "--batch": o.batch = true
        case "--split": o.split = try integer(flag)
        case "--threads": o.threads = try integer(flag)
        case "--length": o.length = try integer(flag)
        case "--generate": o.generate = try integer(flag)
        case "--repeat": o.repeats = try integer(flag)
        default: throw Usage(message: "unknown argument \(flag)")
        }
    }
    return o
}

/// Writes a float32 C-order .npy file.
func writeNpy(_ path: String, _ values: [Float], shape: [Int]) throws {
    let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
    var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(dims)), }"
    let unpadded = 10 + header.utf8.count + 1
    header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
    var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
    let n = UInt16(header.utf8.count)
    data.append(contentsOf: [UInt8(n & 0xFF), UInt8(n >> 8)])
    data.append(contentsOf: Array(header.utf8))
    values.withUnsafeBytes { data.append(contentsOf: $0) }
    try data.write(to: URL(fileURLWithPath: path))
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
}

/// Multiply–adds ×2 of a causal pass over T tokens: the linear layers and head on every row, and
/// attention's two products over the T(T+1)/2 (query, key) pairs it computes.
func forwardFlops(_ c: ModelConfig, tokens T: Int) -> Double {
    let H = Double(c.hiddenSize)
    let D = Double(c.heads * c.headDim)
    let KV = Double(c.kvHeads * c.headDim)
    let I = Double(c.intermediateSize)
    let mlp = (c.architecture == .gpt2 ? 2 : 3) * H * I
    let perToken = Double(c.layers) * (H * (D + 2 * KV) + D * H + mlp) + H * Double(c.vocabSize)
    let pairs = Double(T) * Double(T + 1) / 2
    return 2 * Double(T) * perToken + Double(c.layers) * 2 * 2 * D * pairs
}

/// The weights at `path`: a GGUF file by its suffix, else a Hugging Face directory; and the bytes
/// they map.
func openSource(_ path: String) throws -> (any WeightSource, mapped: Int) {
    if path.lowercased().hasSuffix(".gguf") {
        let gguf = try GGUFModel(path: path)
        return (gguf, gguf.mappedBytes)
    }
    let directory = try HuggingFaceDirectory(path: path)
    return (directory, directory.mappedBytes)
}

func run(_ o: Options) throws {
    BLAS.configure(threads: o.threads)
    let (source, mappedBytes) = try openSource(o.directory)
    let model = try TransformerModel(source: source)
    let V = model.config.vocabSize
    switch o.command {
    case "info":
        let c = model.config
        print(
            "{\"architecture\": \"\(c.architecture.rawValue)\", \"parameters\": \(model.parameterCount), \"layers\": \(c.layers), "
                + "\"vocab\": \(V), \"contextLength\": \(c.maxPositions), \"residentBytes\": \(model.residentBytes), "
                + "\"mappedBytes\": \(mappedBytes), \"blasThreads\": \(BLAS.threads), \"blasCore\": \"\(BLAS.coreName)\"}")
    case "logprobs":
        guard !o.tokens.isEmpty, o.tokens.count == o.outputs.count else {
            throw Usage(message: "logprobs needs one --out per --tokens")
        }
        let results: [[Float]] =
            o.batch ? try model.logits(batch: o.tokens) : try o.tokens.map { try model.logits(tokens: $0) }
        for (i, var logits) in results.enumerated() {
            TransformerModel.logSoftmax(&logits, vocab: V)
            try writeNpy(o.outputs[i], logits, shape: [o.tokens[i].count, V])
        }
    case "incremental":
        guard o.tokens.count == 1, o.outputs.count == 1 else { throw Usage(message: "incremental needs one --tokens and one --out") }
        let tokens = o.tokens[0]
        guard o.split >= 0, o.split <= tokens.count else { throw Usage(message: "--split must lie in 0...\(tokens.count)") }
        let cache = model.makeCache(capacity: 4)
        var rows: [Float] = []
        if o.split > 0 { rows += try model.prefill(Array(tokens[..<o.split]), cache: cache, allPositions: true) }
        for t in tokens[o.split...] { rows += try model.step(t, cache: cache) }
        TransformerModel.logSoftmax(&rows, vocab: V)
        try writeNpy(o.outputs[0], rows, shape: [tokens.count, V])
    case "bench":
        let c = model.config
        // The machine's sgemm rate before and after the passes, the better kept: on a shared
        // machine one measurement may land in a busy moment.
        let sgemmBefore = BLAS.measureSgemm()
        let tokens = (0..<o.length).map { ($0 * 7919 + 13) % V }
        var forward = Double.infinity
        _ = try model.logits(tokens: Array(tokens.prefix(16)))  // first touch of the weights
        for _ in 0..<max(1, o.repeats) {
            forward = min(
                forward,
                try seconds {
                    var l = try model.logits(tokens: tokens)
                    TransformerModel.logSoftmax(&l, vocab: V)
                })
        }
        // Generation: a 16-token prompt, then `generate` greedy steps, best of the repeats.
        var generation = Double.infinity
        for _ in 0..<max(1, o.repeats) {
            let cache = model.makeCache(capacity: 16 + o.generate)
            var next = try model.prefill(Array(tokens.prefix(16)), cache: cache)
            generation = min(
                generation,
                try seconds {
                    for _ in 0..<o.generate {
                        var best = 0
                        for i in 1..<V where next[i] > next[best] { best = i }
                        next = try model.step(best, cache: cache)
                    }
                })
        }
        let flops = forwardFlops(c, tokens: o.length)
        let sgemm = max(sgemmBefore, BLAS.measureSgemm())
        print(
            "{\"tokens\": \(o.length), \"forwardSeconds\": \(forward), \"forwardTokensPerSecond\": \(Double(o.length) / forward), "
                + "\"forwardGflops\": \(flops / forward / 1e9), \"generate\": \(o.generate), \"generateSeconds\": \(generation), "
                + "\"generateTokensPerSecond\": \(Double(o.generate) / generation), \"sgemmGflops\": \(sgemm), "
                + "\"blasThreads\": \(BLAS.threads), \"blasCore\": \"\(BLAS.coreName)\"}")
    default:
        throw Usage(message: "unknown command \(o.command); commands: logprobs, incremental, info, bench")
    }
}

do {
    try run(try parse(Array(CommandLine.arguments.dropFirst())))
} catch let e as Usage {
    FileHandle.standardError.write(Data("usage error: \(e.message)\n".utf8))
    exit(64)
} catch let e as ModelError {
    FileHandle.standardError.write(Data("error: \(e.code.rawValue): \(e.message)\n".utf8))
    exit(2)
} catch let e as StoreError {
    FileHandle.standardError.write(Data("error: \(e.code.rawValue): \(e.message)\n".utf8))
    exit(2)
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(2)
}
