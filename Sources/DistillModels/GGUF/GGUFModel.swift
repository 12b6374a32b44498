import DistillStore
import DistillTokenize
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A language model from a GGUF file: its configuration, its tokenizer, and its weights under
/// Hugging Face names as float32.
///
/// Loading checks everything before it allocates: the family (`general.architecture`: llama,
/// mistral, qwen2, gpt2), the configuration keys, the tokenizer, that every tensor the
/// configuration needs is present with the shape it implies and that no other tensor is there,
/// and that every tensor's type can be converted. Then the weights are converted once, in
/// parallel: F32 tensors are borrowed from the mapping (no copy) unless their rows must be
/// reordered; every other type is converted into memory of the model's own, which costs four
/// bytes per parameter (`residentBytes`; the quantised pages are then dropped from the process's
/// resident set). The query and key rows that llama.cpp's converter interleaved for its RoPE are
/// put back in Hugging Face's order while converting.
///
/// The weights follow `WeightSource`'s conventions with one difference from a Hugging Face GPT-2
/// directory: GGUF stores GPT-2's linear weights already transposed to [out, in], so they come
/// with `transposed == false`. When the file has no `output.weight`, the head is tied
/// (`config.tiedEmbeddings`) and there is no `lm_head.weight`.
public final class GGUFModel: WeightSource {
    public let file: GGUFFile
    public let config: ModelConfig
    public let tokenizer: GGUFTokenizerData
    /// Hugging Face names, in the order of `GGUFNames.expected` (embedding, layers, norm, head).
    public let names: [String]
    /// The GGUF tensor each Hugging Face name came from.
    public let ggufNames: [String: String]
    private let weights: [String: WeightBuffer]
    private let stored: [String: StoredType]

    /// Bytes of float32 weights converted into memory of the model's own (the buffers borrow
    /// them from one block, so their own `residentBytes` say 0).
    public let residentBytes: Int
    /// The file's size: what the mapping spans.
    public var mappedBytes: Int { file.map.size }
    /// Parameters (elements) per stored type, over the weights the model uses.
    public let elementsByType: [StoredType: Int]

    /// The stored type holding the most parameters (`sourceDtype`): Q4_1 for a file whose
    /// layers are Q4_1 even if its embedding is Q8_0 and its norms F32.
    public var sourceType: StoredType {
        elementsByType.max { ($0.value, $0.key.rawValue) < ($1.value, $1.key.rawValue) }?.key ?? .f32
    }

    public var parameters: Int { elementsByType.values.reduce(0, +) }

    public convenience init(path: String) throws {
        try self.init(file: GGUFFile(path: path))
    }

    public init(file: GGUFFile) throws {
        self.file = file
        let meta = GGUFMetadata(file: file)
        let architecture = try meta.architecture()
        let tokenizer = try meta.tokenizer()
        let config = try meta.config(architecture: architecture, vocabSize: tokenizer.tokens.count, tensors: file.tensor)
        self.tokenizer = tokenizer
        self.config = config

        // Every tensor mapped to a Hugging Face name the configuration expects, with that shape.
        let expected = GGUFNames.expected(config, hasOutput: !config.tiedEmbeddings)
        let expectedShapes = Dictionary(expected.map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a })
        var sources: [String: (GGUFTensorInfo, GGUFNames.Target)] = [:]
        for t in file.tensors {
            if t.name == "rope_freqs.weight" && architecture != .gpt2 { continue }  // read into config.ropeScaling
            guard let target = GGUFNames.target(t.name, architecture: architecture, config: config),
                let shape = expectedShapes[target.name]
            else {
                throw ggufError(
                    .shapeMismatch, file.path, tensor: t.name,
                    "a \(architecture.rawValue) model with \(config.layers) layers has no such tensor; distilld would not know what it does"
                )
            }
            guard t.shape == shape else {
                throw ggufError(
                    .shapeMismatch, file.path, tensor: t.name,
                    numbers: ["expectedElements": shape.reduce(1, *), "actualElements": t.elementCount],
                    "its shape \(t.shape) (as \(target.name), in PyTorch's order) disagrees with the configuration, which needs \(shape)")
            }
            guard t.type.stored != nil else {
                throw ggufError(
                    .unsupportedDtype, file.path, tensor: t.name, numbers: ["type": Int(t.type.rawValue)],
                    "its type \(t.type.name) (number \(t.type.rawValue)) cannot be converted; distilld converts \(GGMLType.convertibleNames)"
                )
            }
            sources[target.name] = (t, target)
        }
        for (name, shape) in expected where sources[name] == nil {
            let gguf = GGUFNames.gguf(name, architecture: architecture)
            throw ggufError(
                .shapeMismatch, file.path, tensor: gguf,
                "the tensor is missing; a \(architecture.rawValue) model of this configuration needs it (as \(name), shape \(shape))")
        }
        names = expected.map(\.name)
        ggufNames = sources.mapValues { $0.0.name }
        stored = sources.mapValues { $0.0.type.stored! }
        var elements: [StoredType: Int] = [:]
        for (t, _) in sources.values { elements[t.type.stored!, default: 0] += t.elementCount }
        elementsByType = elements

        // Convert, into one arena for all converted tensors. Buffers are written here, before the
        // model is returned, and never again.
        func borrowable(_ t: GGUFTensorInfo, _ target: GGUFNames.Target) -> Bool {
            t.type == .f32 && target.permutedHeads == nil && t.elementCount > 0
                && Int(bitPattern: file.bytes(of: t).baseAddress) % MemoryLayout<Float>.alignment == 0
        }
        let converted = sources.filter { !borrowable($0.value.0, $0.value.1) }.sorted { $0.key < $1.key }
        let arena = try FloatArena(counts: converted.map { $0.value.0.elementCount })
        var weights: [String: WeightBuffer] = [:]
        var jobs: [ConversionJob] = []
        for (name, (t, target)) in sources where borrowable(t, target) {
            let floats = file.bytes(of: t).baseAddress!.assumingMemoryBound(to: Float.self)
            weights[name] = WeightBuffer(
                borrowing: UnsafeBufferPointer(start: floats, count: t.elementCount), shape: t.shape, owner: file.map)
        }
        for (i, (name, (t, target))) in converted.enumerated() {
            let storage = arena.buffer(i)
            weights[name] = WeightBuffer(borrowing: UnsafeBufferPointer(storage), shape: t.shape, owner: arena)
            jobs += ConversionJob.split(t, source: file.bytes(of: t), into: storage, permutedHeads: target.permutedHeads)
        }
        let resident = converted.reduce(0) { $0 + $1.value.0.elementCount * MemoryLayout<Float>.stride }
        ConversionJob.runAll(jobs)
        try file.map.checkUnchanged()
        for (t, _) in sources.values where t.type != .f32 { Self.dropResidentPages(file, t) }
        self.weights = weights
        residentBytes = resident
    }

    public func info(_ name: String) -> (shape: [Int], stored: StoredType)? {
        guard let w = weights[name], let s = stored[name] else { return nil }
        return (w.shape, s)
    }

    public func float32(_ name: String) throws -> WeightBuffer {
        guard let w = weights[name] else {
            throw ggufError(
                .shapeMismatch, file.path, tensor: name, "a \(config.architecture.rawValue) model from this file has no such tensor")
        }
        return w
    }

    /// Tells the kernel that the quantised bytes are no longer needed in this process: they stay in
    /// the page cache, but stop counting towards the resident set, so that after a load the
    /// process holds the converted weights and not the file besides.
    static func dropResidentPages(_ file: GGUFFile, _ t: GGUFTensorInfo) {
        guard let base = file.map.base, t.byteCount > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: base) + file.dataOffset + t.offset
        let first = (start + page - 1) / page * page
        let end = (start + t.byteCount) / page * page
        guard end > first else { return }
        _ = madvise(UnsafeMutableRawPointer(bitPattern: first), end - first, MADV_DONTNEED)
    }
}

/// One block of anonymous memory holding every converted tensor of a model, each at a 64-byte
/// boundary.
///
/// One mapping instead of a few hundred allocations, so that it can be offered transparent huge
/// pages: writing 500 MB of converted weights through 4 KiB pages takes 130,000 page faults,
/// which cost more than the conversion itself, and the forward pass that streams these weights
/// misses the TLB less.
final class FloatArena {
    let base: UnsafeMutableRawPointer?
    let byteCount: Int
    private let offsets: [Int]
    private let counts: [Int]

    init(counts: [Int]) throws {
        var offsets: [Int] = []
        var end = 0
        for c in counts {
            offsets.append(end)
            end += (c * MemoryLayout<Float>.stride + 63) / 64 * 64
        }
        self.offsets = offsets
        self.counts = counts
        byteCount = end
        guard end > 0 else {
            base = nil
            return
        }
        let p = mmap(nil, end, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let p, p != MAP_FAILED else {
            throw StoreError(.tooLarge, "cannot allocate \(end) bytes for the converted weights: \(String(cString: strerror(errno)))")
        }
        _ = madvise(p, end, MADV_HUGEPAGE)
        base = p
    }

    func buffer(_ i: Int) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: (base! + offsets[i]).bindMemory(to: Float.self, capacity: counts[i]), count: counts[i])
    }

    deinit {
        if let base { munmap(base, byteCount) }
    }
}

/// A run of rows of one tensor to convert: small enough that the machine's cores share a large
/// tensor, large enough that scheduling costs nothing.
struct ConversionJob: @unchecked Sendable {  // each job writes only its own rows of a buffer no one reads yet
    let type: GGMLType
    let source: UnsafeRawPointer
    let destination: UnsafeMutablePointer<Float>
    /// Elements per unit: a row (the PyTorch first axis indexes the units).
    let unit: Int
    let units: Range<Int>
    /// Rows per head when the rows were interleaved for RoPE, or nil.
    let headRows: Int?
    /// For a 1-D tensor whose elements are not whole blocks (converted as one unit): the rows per
    /// head to reorder afterwards, element by element.
    let reorderAfter: Int?

    /// About this many elements go in one job.
    static let chunkElements = 1 << 18

    static func split(
        _ t: GGUFTensorInfo, source: UnsafeRawBufferPointer, into storage: UnsafeMutableBufferPointer<Float>, permutedHeads: Int?
    ) -> [ConversionJob] {
        guard t.elementCount > 0, let src = source.baseAddress, let dst = storage.baseAddress else { return [] }
        let rows = t.shape.first ?? 1
        let unit = t.elementCount / rows
        let headRows = permutedHeads.map { rows / $0 }
        guard unit % t.type.layout.blockSize == 0 else {
            return [
                ConversionJob(
                    type: t.type, source: src, destination: dst, unit: t.elementCount, units: 0..<1, headRows: nil, reorderAfter: headRows)
            ]
        }
        let perJob = max(1, chunkElements / unit)
        return stride(from: 0, to: rows, by: perJob).map {
            ConversionJob(
                type: t.type, source: src, destination: dst, unit: unit, units: $0..<min(rows, $0 + perJob), headRows: headRows,
                reorderAfter: nil)
        }
    }

    /// Where GGUF row `r` goes: within each head of `d` rows, row `2i + s` of the file is row
    /// `s·d/2 + i` of Hugging Face's layout (llama.cpp's converter interleaves the two halves that
    /// RoPE rotates together).
    @inline(__always)
    static func unpermuted(_ r: Int, headRows d: Int) -> Int {
        let j = r % d
        return r - j + (j % 2) * (d / 2) + j / 2
    }

    func run() {
        let (blockSize, typeSize) = type.layout
        let unitBytes = unit / blockSize * typeSize
        if let d = headRows {
            for r in units {
                Dequantize.run(type, source + r * unitBytes, count: unit, into: destination + Self.unpermuted(r, headRows: d) * unit)
            }
        } else {
            Dequantize.run(
                type, source + units.lowerBound * unitBytes, count: units.count * unit, into: destination + units.lowerBound * unit)
        }
        if let d = reorderAfter {
            let copy = Array(UnsafeBufferPointer(start: destination, count: unit))
            for r in 0..<unit { destination[Self.unpermuted(r, headRows: d)] = copy[r] }
        }
    }

    /// Runs every job, spread over the machine's cores.
    static func runAll(_ jobs: [ConversionJob]) {
        DispatchQueue.concurrentPerform(iterations: jobs.count) { jobs[$0].run() }
    }
}
