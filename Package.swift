// swift-tools-version:6.0
import Foundation
import PackageDescription

/// The loss kernels are written on SIMD16<Float>. On the x86-64 baseline (SSE2)
/// each vector spans four registers and FMA is a library call, which made forward
/// KL about 3x slower; so on x86-64 the numeric core is built for Haswell (AVX2 +
/// FMA, every x86 server CPU since 2013) and the executable checks the CPU at
/// start, refusing with a clear message instead of dying on an illegal
/// instruction. `DISTILLD_PORTABLE=1 swift build` builds for the baseline.
#if arch(x86_64)
    let portable = ProcessInfo.processInfo.environment["DISTILLD_PORTABLE"] != nil
#else
    let portable = true
#endif
let simdSettings: [SwiftSetting] = portable ? [] : [.unsafeFlags(["-target-cpu", "haswell"])]
let cpuCheck: [SwiftSetting] = portable ? [] : [.define("DISTILLD_REQUIRES_AVX2")]

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
        .target(name: "DistillJSON", dependencies: ["CJansson"]),
        // Tensors shared by the numeric core, the stores and the server: no I/O.
        .target(name: "DistillTensor"),
        // Named teachers and datasets: file formats, memory maps, the registry.
        .target(name: "DistillStore", dependencies: ["DistillJSON", "DistillTensor"]),
        // Text matching, pair integrity checks and SVG charts for the analyses: no JSON, no I/O.
        .target(name: "DistillText"),
        // The loss engine: every divergence, SIMD kernels, no JSON and no I/O.
        .target(name: "DistillMath", dependencies: ["DistillTensor"], swiftSettings: simdSettings),
        // score, diagnose, explain: the analyses, over the loss engine, the stores and the text layer.
        .target(name: "DistillAnalysis", dependencies: ["DistillMath", "DistillTensor", "DistillStore", "DistillText"]),
        // Message and error types, one per file; pure values over DistillJSON.
        .target(name: "DistillProtocol", dependencies: ["DistillJSON"]),
        // Framing (Content-Length and newline-delimited), connections, sockets.
        .target(name: "DistillTransport", dependencies: ["DistillJSON"]),
        // Dispatch, sessions, cancellation, progress.
        .target(
            name: "DistillServer",
            dependencies: [
                "DistillJSON", "DistillProtocol", "DistillTransport", "DistillTensor", "DistillStore", "DistillMath",
                "DistillText", "DistillAnalysis",
            ]),
        // The thin executable: flags, stdio set-up, socket mode, `connect`.
        .executableTarget(
            name: "distilld",
            dependencies: [
                "DistillServer", "DistillTransport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: cpuCheck),
        // Kernel benchmark: distilld's kernels on N×V logits, next to numpy and PyTorch (Tests/bench).
        .executableTarget(name: "distill-bench-kernels", dependencies: ["DistillMath", "DistillTensor"]),
        .testTarget(name: "DistillJSONTests", dependencies: ["DistillJSON"]),
        .testTarget(name: "DistillTextTests", dependencies: ["DistillText"]),
        .testTarget(name: "DistillMathTests", dependencies: ["DistillMath", "DistillTensor"]),
        .testTarget(name: "DistillStoreTests", dependencies: ["DistillStore", "DistillJSON", "DistillTensor"]),
        .testTarget(name: "DistillTransportTests", dependencies: ["DistillTransport", "DistillJSON"]),
        .testTarget(
            name: "DistillServerTests",
            dependencies: ["DistillServer", "DistillProtocol", "DistillTransport", "DistillJSON"]),
    ],
    swiftLanguageModes: [.v5]
)
