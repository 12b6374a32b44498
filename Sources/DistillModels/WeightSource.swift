/// A model's weights by their Hugging Face names, as float32, whatever the file stores.
///
/// Names are Hugging Face's (`model.layers.0.self_attn.q_proj.weight`, `transformer.h.0.attn.c_attn.weight`):
/// a GGUF reader maps llama.cpp's names to these and undoes the query/key row permutation its
/// converter applies, so the forward pass knows one naming. Linear weights are in PyTorch's
/// `nn.Linear` layout, [out, in] row-major, unless `WeightBuffer.transposed` says they are stored
/// [in, out] (GPT-2's `Conv1D`), which the forward pass reads with a transposed BLAS call instead
/// of copying.
public protocol WeightSource: Sendable {
    var config: ModelConfig { get }
    /// Every tensor name the source holds.
    var names: [String] { get }
    /// The shape and stored type of a tensor, without reading it.
    func info(_ name: String) -> (shape: [Int], stored: StoredType)?
    /// The tensor as float32: the mapped bytes when the file stores float32, converted once otherwise.
    /// Throws an error naming the tensor when it is absent or cannot be read.
    func float32(_ name: String) throws -> WeightBuffer
    /// Bytes of weights held in memory of the source's own (converted or copied), as opposed to
    /// mapped from the file: what a load costs beyond the mapping.
    var residentBytes: Int { get }
}

extension WeightSource {
    /// The sum over the tensors' buffers. A source that keeps its buffers elsewhere (one block
    /// for all, say, which each buffer borrows) reports its own figure instead.
    public var residentBytes: Int {
        names.reduce(0) { $0 + ((try? float32($1).residentBytes) ?? 0) }
    }
}

/// Float32 weights, either borrowed from a mapping (kept alive by `owner`) or owned.
public final class WeightBuffer: @unchecked Sendable {  // immutable after init; the memory is never written
    public let pointer: UnsafeBufferPointer<Float>
    public let shape: [Int]
    /// True when a 2-D linear weight is stored [in, out] instead of [out, in].
    public let transposed: Bool
    /// Whatever keeps a borrowed `pointer` valid: a mapped file, say.
    private let owner: AnyObject?
    /// Whether `pointer` was allocated here (and is freed in deinit).
    private let owns: Bool

    /// Borrows `pointer`, which stays valid as long as `owner` lives.
    public init(borrowing pointer: UnsafeBufferPointer<Float>, shape: [Int], transposed: Bool = false, owner: AnyObject) {
        self.pointer = pointer
        self.shape = shape
        self.transposed = transposed
        self.owner = owner
        self.owns = false
    }

    /// Takes `values`, converted or dequantised from the file.
    public init(owning values: [Float], shape: [Int], transposed: Bool = false) {
        let storage = UnsafeMutableBufferPointer<Float>.allocate(capacity: values.count)
        _ = storage.initialize(from: values)
        self.pointer = UnsafeBufferPointer(storage)
        self.shape = shape
        self.transposed = transposed
        self.owner = nil
        self.owns = true
    }

    /// Takes `storage`, which must come from `UnsafeMutableBufferPointer<Float>.allocate`; it is
    /// freed in deinit. Lets a converter write straight into the buffer it hands over, instead of
    /// building an array that `init(owning:)` would copy.
    public init(adopting storage: UnsafeMutableBufferPointer<Float>, shape: [Int], transposed: Bool = false) {
        self.pointer = UnsafeBufferPointer(storage)
        self.shape = shape
        self.transposed = transposed
        self.owner = nil
        self.owns = true
    }

    deinit {
        if owns { UnsafeMutableBufferPointer(mutating: pointer).deallocate() }
    }

    /// Bytes this buffer holds in memory of its own (0 when it borrows a mapping).
    public var residentBytes: Int { owns ? pointer.count * MemoryLayout<Float>.stride : 0 }
}
