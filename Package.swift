// swift-tools-version:6.0
import PackageDescription

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
        // Message and error types, one per file; pure values over DistillJSON.
        .target(name: "DistillProtocol", dependencies: ["DistillJSON"]),
        // Framing (Content-Length and newline-delimited), connections, sockets.
        .target(name: "DistillTransport", dependencies: ["DistillJSON"]),
        // Dispatch, sessions, cancellation, progress.
        .target(
            name: "DistillServer",
            dependencies: ["DistillJSON", "DistillProtocol", "DistillTransport", "DistillTensor", "DistillStore"]),
        // The thin executable: flags, stdio set-up, socket mode, `connect`.
        .executableTarget(
            name: "distilld",
            dependencies: [
                "DistillServer", "DistillTransport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .testTarget(name: "DistillJSONTests", dependencies: ["DistillJSON"]),
        .testTarget(name: "DistillTextTests", dependencies: ["DistillText"]),
        .testTarget(name: "DistillStoreTests", dependencies: ["DistillStore", "DistillJSON", "DistillTensor"]),
        .testTarget(name: "DistillTransportTests", dependencies: ["DistillTransport", "DistillJSON"]),
        .testTarget(
            name: "DistillServerTests",
            dependencies: ["DistillServer", "DistillProtocol", "DistillTransport", "DistillJSON"]),
    ],
    swiftLanguageModes: [.v5]
)
