// swift-tools-version:6.0
import Foundation
import PackageDescription

/// The loss kernels are written on Swift SIMD vectors whose width is chosen per
/// build (Sources/DistillMath/Kernels/Width.swift). On the x86-64 baseline (SSE2)
/// FMA is a library call, which made forward KL about 3x slower; so on x86-64 the
/// numeric core is built for one of two levels, and the executable checks the CPU
/// at start, refusing with a clear sentence instead of dying on an illegal
/// instruction:
///
/// - AVX-512 (F, CD, BW, DQ, VL: `-target-cpu skylake-avx512`, 16-lane kernels)
///   when the building machine has it, as -march=native would. Forward KL runs
///   about 1.6x faster than with AVX2 on Zen 4 (make bench).
/// - AVX2 + FMA (`-target-cpu haswell`, 8-lane kernels) otherwise, or when
///   `DISTILLD_KERNELS=avx2` is set: every x86 server CPU since 2013. Build this
///   way for binaries that must run on other machines.
///
/// `DISTILLD_PORTABLE=1 swift build` builds for the baseline.
let environment = ProcessInfo.processInfo.environment
#if arch(x86_64)
    let portable = environment["DISTILLD_PORTABLE"] != nil
#else
    let portable = true
#endif
let avx512Flags = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
let buildMachineHasAVX512: Bool = {
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
        let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
    else { return false }
    let flags = Set(line.split(separator: " ").map(String.init))
    return avx512Flags.allSatisfy(flags.contains)
}()
let useAVX512 = !portable && environment["DISTILLD_KERNELS"] != "avx2" && buildMachineHasAVX512
let simdSettings: [SwiftSetting] =
    portable
    ? []
    : useAVX512
        ? [.define("DISTILL_KERNELS_AVX512"), .unsafeFlags(["-target-cpu", "skylake-avx512"])]
        : [.unsafeFlags(["-target-cpu", "haswell"])]
let cpuCheck: [SwiftSetting] =
    portable
    ? [] : useAVX512 ? [.define("DISTILLD_REQUIRES_AVX2"), .define("DISTILLD_REQUIRES_AVX512")] : [.define("DISTILLD_REQUIRES_AVX2")]

let package = Package(
    name: "distilld",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "distilld", targets: ["distilld"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
    ],
    targets: [
        // C: jansson, found with pkg-config; the shim re-exports its macros.
        .systemLibrary(
            name: "CJansson", pkgConfig: "jansson",
            providers: [.apt(["libjansson-dev"])]),
        // The one owning JSON value type; nothing else touches CJansson.
        .target(name: "DistillJSON", dependencies: ["CJansson", "DistillTensor"]),
        // The project's one lock (a mutex with a condition, over pthread): no dependencies.
        .target(name: "DistillSync"),
        // The POSIX file writes other modules share (every byte of a buffer, a file replaced
        // whole): no dependencies.
        .target(name: "DistillSystem"),
        // Tensors shared by the numeric core, the stores and the server: no I/O.
        .target(name: "DistillTensor"),
        // How a teacher or dataset file is read: formats, kinds and options, as plain values
        // with the JSON form replies echo and the workspace keeps. The store reads by them and
        // re-exports them; the protocol decodes them from requests.
        .target(name: "DistillSourceOptions", dependencies: ["DistillJSON", "DistillTensor"]),
        // Named teachers and datasets: file formats, memory maps, the registry.
        .target(
            name: "DistillStore",
            dependencies: ["DistillJSON", "DistillTensor", "DistillSync", "DistillSystem", "DistillSourceOptions", "CStoreSupport"]),
        // C helper for the store: the SIGBUS guard over mapped files that shrink while mapped.
        .target(name: "CStoreSupport"),
        // Text matching, pair integrity checks and SVG charts for the analyses: no JSON, no I/O.
        .target(name: "DistillText"),
        // C helpers for the kernels that Swift cannot express (software prefetch).
        .target(name: "CKernelSupport"),
        // The loss engine: every divergence, SIMD kernels, no JSON and no I/O.
        .target(
            name: "DistillMath", dependencies: ["DistillTensor", "DistillSync", "CKernelSupport"], swiftSettings: simdSettings),
        // score, diagnose, explain: the analyses, over the loss engine, the stores and the text layer.
        .target(name: "DistillAnalysis", dependencies: ["DistillMath", "DistillTensor", "DistillStore", "DistillText"]),
        // Chat templates: the Jinja subset Hugging Face chat templates use, rendered as transformers
        // renders them. A leaf: no dependencies, no Foundation.
        .target(name: "DistillTemplate"),
        // Tokenizers: Hugging Face tokenizer.json and GGUF metadata, on Unicode scalars. Reads JSON files only.
        .target(name: "DistillTokenize", dependencies: ["DistillJSON"]),
        // Language models that run: GGUF and Hugging Face directories, the transformer forward pass.
        .target(
            name: "DistillModels",
            dependencies: [
                "DistillTokenize", "DistillStore", "DistillJSON", "DistillTensor", "DistillMath", "DistillSync", "DistillNGram",
                "COpenBLAS",
            ],
            swiftSettings: simdSettings),
        // C: OpenBLAS (CBLAS and its thread controls), found with pkg-config.
        .systemLibrary(
            name: "COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        // n-gram language models: ARPA reading and writing, kenlm-exact scoring, interpolated
        // modified Kneser–Ney estimation. A leaf: Foundation and the file writes only, no JSON,
        // no server.
        .target(name: "DistillNGram", dependencies: ["DistillSystem"]),
        // The JSON Schemas of Protocol/schemas as text, embedded at build time by the plugin below.
        .target(name: "DistillSchemas", plugins: ["EmbedSchemas"]),
        .plugin(name: "EmbedSchemas", capability: .buildTool()),
        // Message and error types, one per file: pure values over DistillJSON and the leaves
        // (tensors for inline arrays, the loss configuration, the text layer's findings, the
        // options files are read by).
        .target(
            name: "DistillProtocol",
            dependencies: ["DistillJSON", "DistillTensor", "DistillMath", "DistillText", "DistillSourceOptions", "DistillSchemas"]),
        // Framing (Content-Length and newline-delimited), connections, sockets.
        .target(name: "DistillTransport", dependencies: ["DistillJSON", "DistillSync", "DistillSystem"]),
        // Dispatch, sessions, cancellation, progress.
        .target(
            name: "DistillServer",
            dependencies: [
                "DistillJSON", "DistillProtocol", "DistillTransport", "DistillTensor", "DistillStore", "DistillMath",
                "DistillText", "DistillAnalysis", "DistillSync", "DistillModels", "DistillNGram", "DistillTokenize", "DistillTemplate",
            ]),
        // The thin executable: flags, stdio set-up, socket mode, `connect`.
        .executableTarget(
            name: "distilld",
            dependencies: [
                "DistillServer", "DistillStore", "DistillTransport", "DistillSync", "DistillModels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: cpuCheck),
        // Kernel benchmark: distilld's kernels on N×V logits, next to numpy and PyTorch (Tests/bench).
        .executableTarget(name: "distill-bench-kernels", dependencies: ["DistillMath", "DistillTensor"]),
        // Runs a model directory on token ids and writes log-probabilities as .npy: the forward pass's
        // check against transformers (Tests/python/test_models_forward.py) and its benchmark (Tests/bench).
        .executableTarget(name: "distill-model-check", dependencies: ["DistillModels", "DistillStore"]),
        // The n-gram layer from the command line, printing JSON, for the kenlm comparison (Tests/python/test_ngram.py).
        .executableTarget(name: "distill-ngram-check", dependencies: ["DistillNGram"]),
        // What distilld reads from a GGUF file, as JSON and .npy files, for Tests/python/test_gguf.py.
        .executableTarget(
            name: "distill-gguf-dump", dependencies: ["DistillModels", "DistillStore", "DistillJSON", "DistillTokenize"]),
        // Tokenizer driver for the comparisons with `tokenizers` and transformers (Tests/python/test_tokenizers.py).
        .executableTarget(name: "distill-tokenize", dependencies: ["DistillTokenize", "DistillJSON"]),
        .testTarget(name: "DistillSyncTests", dependencies: ["DistillSync"]),
        .testTarget(name: "DistillSystemTests", dependencies: ["DistillSystem"]),
        .testTarget(name: "DistillJSONTests", dependencies: ["DistillJSON", "DistillSync"]),
        .testTarget(name: "DistillTensorTests", dependencies: ["DistillTensor"]),
        .testTarget(name: "DistillTextTests", dependencies: ["DistillText", "DistillTestSupport"]),
        .testTarget(name: "DistillTokenizeTests", dependencies: ["DistillTokenize", "DistillJSON"]),
        .testTarget(name: "DistillTemplateTests", dependencies: ["DistillTemplate"]),
        // What the tests share: the seeded generator, the worst-error report, Protocol/schemas.
        .target(name: "DistillTestSupport", dependencies: ["DistillJSON"], path: "Tests/Support"),
        .testTarget(name: "DistillMathTests", dependencies: ["DistillMath", "DistillTensor", "DistillSync", "DistillTestSupport"]),
        .testTarget(
            name: "DistillAnalysisTests",
            dependencies: [
                "DistillAnalysis", "DistillMath", "DistillStore", "DistillTensor", "DistillText", "DistillTestSupport",
            ]),
        .testTarget(name: "DistillProtocolTests", dependencies: ["DistillProtocol", "DistillJSON", "DistillTestSupport"]),
        .testTarget(
            name: "DistillStoreTests", dependencies: ["DistillStore", "DistillJSON", "DistillTensor", "DistillSync", "CStoreSupport"]),
        .testTarget(name: "DistillNGramTests", dependencies: ["DistillNGram", "DistillTestSupport"]),
        .testTarget(name: "DistillTransportTests", dependencies: ["DistillTransport", "DistillJSON"]),
        .testTarget(name: "DistillModelsTests", dependencies: ["DistillModels", "DistillStore", "DistillTokenize", "DistillJSON"]),
        .testTarget(
            name: "DistillServerTests",
            dependencies: ["DistillServer", "DistillProtocol", "DistillStore", "DistillTransport", "DistillJSON", "DistillTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)

/// Coverage-guided fuzz targets (Fuzz/README section in README.md, `make fuzz`): declared only
/// when `DISTILLD_FUZZ=1`, so the ordinary build and test never compile them. They are built
/// with `-sanitize=fuzzer,address` into their own scratch directory (.build-fuzz).
if environment["DISTILLD_FUZZ"] != nil {
    let fuzzTargets: [(String, [Target.Dependency])] = [
        ("FuzzFraming", ["DistillTransport"]),
        ("FuzzDispatch", ["DistillServer", "DistillTransport", "DistillJSON"]),
        ("FuzzArrays", ["DistillServer", "DistillProtocol", "DistillJSON"]),
        ("FuzzSafetensors", ["DistillStore", "DistillTensor"]),
        ("FuzzNpy", ["DistillStore", "DistillTensor"]),
        ("FuzzDatasets", ["DistillStore", "DistillTensor"]),
        ("FuzzVocabulary", ["DistillStore"]),
        ("FuzzGGUF", ["DistillModels", "DistillStore"]),
        ("FuzzTemplate", ["DistillTemplate"]),
        ("FuzzTokenizer", ["DistillTokenize", "DistillJSON"]),
    ]
    package.targets.append(
        .target(
            name: "FuzzSupport", dependencies: ["DistillStore", "DistillTensor", "DistillSystem"], path: "Fuzz/Targets/FuzzSupport"))
    for (name, dependencies) in fuzzTargets {
        package.targets.append(
            .executableTarget(
                name: name, dependencies: dependencies + ["FuzzSupport"], path: "Fuzz/Targets/\(name)",
                swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
    }
}
