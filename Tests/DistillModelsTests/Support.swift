import Foundation

@testable import DistillModels

/// A deterministic generator (64-bit LCG, top bits) for test data.
struct Rng {
    var state: UInt64
    init(_ seed: UInt64) { state = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407 }
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state >> 11
    }
    /// Uniform in [-1, 1).
    mutating func uniform() -> Double { Double(next()) / Double(1 << 53) * 2 - 1 }
    mutating func floats(_ n: Int, scale: Double = 1) -> [Float] { (0..<n).map { _ in Float(uniform() * scale) } }
}

/// Weights held in memory, every tensor the configuration asks for drawn at random.
struct MemorySource: WeightSource {
    let config: ModelConfig
    var tensors: [String: WeightBuffer]

    init(config: ModelConfig, seed: UInt64 = 1) {
        self.config = config
        var rng = Rng(seed)
        var t: [String: WeightBuffer] = [:]
        for spec in tensorSpecs(config) {
            let n = spec.shape.reduce(1, *)
            let isNorm = spec.name.contains("norm") || spec.name.contains(".ln_")
            let values = isNorm && spec.name.hasSuffix("weight") ? rng.floats(n, scale: 0.2).map { 1 + $0 } : rng.floats(n, scale: 0.4)
            t[spec.name] = WeightBuffer(owning: values, shape: spec.shape)
        }
        tensors = t
    }

    var names: [String] { Array(tensors.keys) }
    func info(_ name: String) -> (shape: [Int], stored: StoredType)? { tensors[name].map { ($0.shape, .f32) } }
    func float32(_ name: String) throws -> WeightBuffer {
        guard let b = tensors[name] else { throw ModelError(.missingTensor, "no tensor '\(name)'", tensor: name) }
        return b
    }
}

func llamaConfig(
    architecture: Architecture = .llama, heads: Int = 4, kvHeads: Int = 2, headDim: Int = 8, window: Int? = nil,
    scaling: RopeScaling? = nil, tied: Bool = false, bias: Bool = false
) -> ModelConfig {
    ModelConfig(
        architecture: architecture, vocabSize: 40, hiddenSize: 24, layers: 2, heads: heads, kvHeads: kvHeads, headDim: headDim,
        intermediateSize: 36, maxPositions: 64, normEpsilon: 1e-5, ropeTheta: 10_000, ropeScaling: scaling, tiedEmbeddings: tied,
        attentionBias: bias, slidingWindow: window)
}

func gpt2Config() -> ModelConfig {
    ModelConfig(
        architecture: .gpt2, vocabSize: 50, hiddenSize: 24, layers: 2, heads: 3, kvHeads: 3, headDim: 8, intermediateSize: 40,
        maxPositions: 32, normEpsilon: 1e-5, tiedEmbeddings: true)
}

/// The largest |a[i] − b[i]|.
func maxAbsDiff(_ a: [Float], _ b: [Double]) -> Double {
    precondition(a.count == b.count)
    return zip(a, b).map { abs(Double($0) - $1) }.max() ?? 0
}
