import DistillJSON
import DistillStore
import DistillSync
import DistillTensor
import Foundation

/// A Hugging Face model directory as a `WeightSource`: `config.json`, the weights in
/// `model.safetensors` or in the shards that `model.safetensors.index.json` names, and the optional
/// `generation_config.json`. (`tokenizer.json` is DistillTokenize's.)
///
/// Every safetensors file is memory-mapped and its header validated at opening (DistillStore's
/// `SafetensorsFile`). F32 tensors are handed out as views into the mapping, so their memory is the
/// page cache's, not the process's; F16 and BF16 tensors are converted to float32 the first time
/// `float32(_:)` asks for them and kept (`residentBytes` counts them), so a second call costs
/// nothing.
///
/// Pickled PyTorch checkpoints (`pytorch_model.bin`, `*.pt`, `*.pth`, `*.ckpt`) are refused by
/// name, without being opened: unpickling runs code from the file.
///
/// GPT-2 checkpoints written before transformers prefixed the base model's names (`h.0.attn...`,
/// `wte.weight`, as in OpenAI's own upload) are read under the `transformer.` names, and GPT-2's
/// `Conv1D` weights, stored [in, out], are handed out with `transposed` set.
public final class HuggingFaceDirectory: WeightSource {
    public let path: String
    public let config: ModelConfig
    public let huggingFaceConfig: HuggingFaceConfig
    /// `generation_config.json`, when present.
    public let generation: GenerationDefaults?
    /// The safetensors files, in shard order.
    public let files: [SafetensorsFile]
    /// Tensor name (Hugging Face's, after the GPT-2 prefix fix) → file index and header entry.
    private let entries: [String: (file: Int, entry: SafetensorsFile.Entry)]
    public let names: [String]
    /// The tensors converted so far (F16, BF16, and F32 ones copied for alignment), by name.
    private let converted = Mutex<[String: WeightBuffer]>([:])

    /// File names that are pickled checkpoints.
    static let pickleSuffixes = [".bin", ".pt", ".pth", ".ckpt"]

    public static func isPickled(_ name: String) -> Bool {
        let lower = name.lowercased()
        return pickleSuffixes.contains { lower.hasSuffix($0) } || lower.hasSuffix(".bin.index.json")
    }

    static func pickleRefusal(_ path: String) -> ModelError {
        ModelError(
            .pickledCheckpoint,
            "\(path) is a pickled PyTorch checkpoint; distilld does not open pickles, because unpickling runs code from the file. "
                + "Convert the model to safetensors (model.safetensors, e.g. with save_pretrained(safe_serialization=True)) or to GGUF",
            file: path)
    }

    /// Opens the model directory at `path`. Throws `ModelError` for a pickled checkpoint, a missing
    /// file, a bad configuration or index, and DistillStore's `StoreError` for a safetensors file
    /// that is truncated or whose header is malformed.
    public init(path: String) throws {
        // Only stat'ed, never opened, before the name is judged.
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        if !isDirectory.boolValue, Self.isPickled((path as NSString).lastPathComponent) { throw Self.pickleRefusal(path) }
        guard exists else {
            throw ModelError(.missingFile, "\(path): no such file or directory", file: path)
        }
        guard isDirectory.boolValue else {
            throw ModelError(
                .missingFile,
                "\(path) is a file; a Hugging Face model is a directory holding config.json and model.safetensors", file: path)
        }
        self.path = path
        let configPath = path + "/config.json"
        let listing = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        let indexPath = path + "/model.safetensors.index.json"
        let singlePath = path + "/model.safetensors"
        let shardNames: [String]
        var weightMap: [String: String] = [:]
        if FileManager.default.fileExists(atPath: indexPath) {
            (shardNames, weightMap) = try Self.readIndex(indexPath)
        } else if FileManager.default.fileExists(atPath: singlePath) {
            shardNames = ["model.safetensors"]
        } else {
            if let pickle = listing.sorted().first(where: Self.isPickled) { throw Self.pickleRefusal(path + "/" + pickle) }
            let others = listing.filter { $0.hasSuffix(".safetensors") }.sorted()
            let hint = others.isEmpty ? "" : " (it holds \(others.joined(separator: ", ")))"
            throw ModelError(
                .missingFile, "\(path) holds neither model.safetensors nor model.safetensors.index.json\(hint)", file: path)
        }
        guard FileManager.default.fileExists(atPath: configPath) else {
            throw ModelError(
                .missingFile, "\(configPath): no such file; a Hugging Face model directory needs config.json", file: configPath)
        }
        let hf = try HuggingFaceConfig(json: Self.readJSON(configPath), file: configPath)
        huggingFaceConfig = hf
        config = hf.model
        let generationPath = path + "/generation_config.json"
        generation =
            FileManager.default.fileExists(atPath: generationPath)
            ? try GenerationDefaults(json: Self.readJSON(generationPath), file: generationPath) : nil

        var files: [SafetensorsFile] = []
        var entries: [String: (file: Int, entry: SafetensorsFile.Entry)] = [:]
        let gpt2 = config.architecture == .gpt2
        for (i, shard) in shardNames.enumerated() {
            let shardPath = path + "/" + shard
            guard FileManager.default.fileExists(atPath: shardPath) else {
                throw ModelError(
                    .missingFile, "\(shardPath): no such file; model.safetensors.index.json names it as a shard", file: shardPath)
            }
            let file = try SafetensorsFile(path: shardPath)
            files.append(file)
            for (tensorName, entry) in file.entries {
                let canonical = gpt2 ? Self.gpt2Name(tensorName) : tensorName
                if let other = entries[canonical] {
                    throw ModelError(
                        .badConfig,
                        "tensor '\(canonical)' is stored twice: in \(files[other.file].path) and in \(shardPath)",
                        file: shardPath, tensor: canonical)
                }
                entries[canonical] = (i, entry)
            }
        }
        // The index must not promise tensors that its shards lack.
        for (tensorName, shard) in weightMap.sorted(by: { $0.key < $1.key }) {
            let canonical = gpt2 ? Self.gpt2Name(tensorName) : tensorName
            guard let found = entries[canonical] else {
                throw ModelError(
                    .missingTensor,
                    "tensor '\(tensorName)': model.safetensors.index.json places it in \(shard), which does not hold it",
                    file: indexPath, tensor: tensorName)
            }
            if shardNames[found.file] != shard {
                throw ModelError(
                    .badConfig,
                    "tensor '\(tensorName)': model.safetensors.index.json places it in \(shard) but it is in \(shardNames[found.file])",
                    file: indexPath, tensor: tensorName)
            }
        }
        self.files = files
        self.entries = entries
        names = entries.keys.sorted()
    }

    /// GPT-2's base-model names without the `transformer.` prefix get it back.
    static func gpt2Name(_ name: String) -> String {
        name.hasPrefix("transformer.") || name.hasPrefix("lm_head.") ? name : "transformer." + name
    }

    /// GPT-2's `Conv1D` weights, stored [in, out].
    static func isConv1D(_ name: String) -> Bool {
        name.hasSuffix(".attn.c_attn.weight") || name.hasSuffix(".attn.c_proj.weight") || name.hasSuffix(".mlp.c_fc.weight")
            || name.hasSuffix(".mlp.c_proj.weight")
    }

    static func readJSON(_ path: String) throws -> JSON {
        let map = try MappedFile(path: path)
        do {
            return try map.withBytes { try JSON.parse($0) }
        } catch let e as JSONParseError {
            throw ModelError(.badConfig, "\(path): not valid JSON: \(e.message) (line \(e.line), column \(e.column))", file: path)
        }
    }

    /// The shard file names in order of first appearance, and the weight map.
    static func readIndex(_ path: String) throws -> ([String], [String: String]) {
        let json = try readJSON(path)
        guard let map = json["weight_map"]?.members else {
            throw ModelError(.badConfig, "\(path): 'weight_map' is missing or not an object", file: path, field: "weight_map")
        }
        var shards: [String] = []
        var seen = Set<String>()
        var weightMap: [String: String] = [:]
        for (name, value) in map {
            guard let shard = value.stringValue else {
                throw ModelError(
                    .badConfig, "\(path): weight_map entry '\(name)' is \(value.kindDescription), not a file name", file: path,
                    tensor: name)
            }
            // Shards live beside the index: no paths out of the directory.
            guard !shard.isEmpty, !shard.contains("/"), shard != "..", shard != "." else {
                throw ModelError(
                    .badConfig, "\(path): weight_map entry '\(name)' names '\(shard)', not a file in the model directory",
                    file: path, tensor: name)
            }
            if isPickled(shard) { throw pickleRefusal((path as NSString).deletingLastPathComponent + "/" + shard) }
            weightMap[name] = shard
            if seen.insert(shard).inserted { shards.append(shard) }
        }
        guard !shards.isEmpty else { throw ModelError(.badConfig, "\(path): weight_map is empty", file: path, field: "weight_map") }
        return (shards, weightMap)
    }

    public func info(_ name: String) -> (shape: [Int], stored: StoredType)? {
        guard let (_, entry) = entries[name], let stored = Self.storedType(entry.dtypeName) else { return nil }
        return (entry.shape, stored)
    }

    static func storedType(_ dtype: String) -> StoredType? {
        switch dtype {
        case "F32": return .f32
        case "F16": return .f16
        case "BF16": return .bf16
        default: return nil
        }
    }

    /// Bytes of the tensors converted (or copied) into memory of the process's own so far.
    public var residentBytes: Int {
        converted.withLock { $0.values.reduce(0) { $0 + $1.residentBytes } }
    }

    public func float32(_ name: String) throws -> WeightBuffer {
        if let done = converted.withLock({ $0[name] }) { return done }
        let buffer = try convert(name)
        guard buffer.residentBytes > 0 else { return buffer }
        // Two threads converting the same tensor at once keep the first one's result.
        return converted.withLock { table in
            if let first = table[name] { return first }
            table[name] = buffer
            return buffer
        }
    }

    private func convert(_ name: String) throws -> WeightBuffer {
        guard let (index, entry) = entries[name] else {
            throw ModelError(.missingTensor, "\(path): no tensor '\(name)'", file: path, tensor: name)
        }
        let file = files[index]
        let transposed = config.architecture == .gpt2 && entry.shape.count == 2 && Self.isConv1D(name)
        switch entry.dtypeName {
        case "F32":
            let (tensor, copied) = try file.tensor(entry.name)
            let storage = tensor.storage
            let pointer = UnsafeBufferPointer(
                start: storage.base.assumingMemoryBound(to: Float.self), count: tensor.elementCount)
            if copied {
                // Misaligned in the file: DistillStore made an aligned copy; own it, so it is counted.
                let own = UnsafeMutableBufferPointer<Float>.allocate(capacity: pointer.count)
                _ = own.initialize(from: pointer)
                return WeightBuffer(adopting: own, shape: entry.shape, transposed: transposed)
            }
            return WeightBuffer(borrowing: pointer, shape: entry.shape, transposed: transposed, owner: storage)
        case "F16", "BF16":
            let count = (entry.end - entry.begin) / 2
            let bytes = UnsafeRawBufferPointer(start: file.map.base! + file.dataOffset + entry.begin, count: count * 2)
            let out = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            if entry.dtypeName == "F16" {
                HalfConversion.fromFloat16(bytes, into: out)
            } else {
                HalfConversion.fromBFloat16(bytes, into: out)
            }
            return WeightBuffer(adopting: out, shape: entry.shape, transposed: transposed)
        default:
            throw ModelError(
                .unsupportedDtype,
                "\(file.path) tensor '\(name)': dtype \(entry.dtypeName) is not supported; model weights must be F32, F16 or BF16",
                file: file.path, tensor: name)
        }
    }

    /// Throws DistillStore's `.fileChanged` when a weight file changed since it was mapped.
    public func checkUnchanged() throws {
        for file in files { try file.map.checkUnchanged() }
    }

    /// Bytes mapped from the weight files.
    public var mappedBytes: Int { files.reduce(0) { $0 + $1.map.size } }
}

/// `generation_config.json`: the defaults a model's authors chose for sampling.
public struct GenerationDefaults: Sendable, Equatable {
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]
    public var padTokenId: Int?
    public var temperature: Double?
    public var topK: Int?
    public var topP: Double?
    public var maxNewTokens: Int?
    public var doSample: Bool?

    init(json: JSON, file: String) throws {
        guard json.isObject else {
            throw ModelError(.badConfig, "\(file): the generation configuration is \(json.kindDescription), not an object", file: file)
        }
        let r = FieldReader(json: json, file: file)
        bosTokenId = try r.intOrList("bos_token_id").first
        eosTokenIds = try r.intOrList("eos_token_id")
        padTokenId = try r.intOrList("pad_token_id").first
        temperature = try r.double("temperature")
        topK = try r.int("top_k")
        topP = try r.double("top_p")
        maxNewTokens = try r.int("max_new_tokens")
        doSample = try r.bool("do_sample")
    }
}

/// F16 and BF16 to float32, written straight into the buffer a `WeightBuffer` adopts.
enum HalfConversion {
    static func fromFloat16(_ bytes: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
        let count = out.count
        var i = 0
        while i + 16 <= count {
            let h = bytes.loadUnaligned(fromByteOffset: 2 * i, as: SIMD16<UInt16>.self)
            let v = SIMD16<Float>(unsafeBitCast(h, to: SIMD16<Float16>.self))
            UnsafeMutableRawPointer(out.baseAddress! + i).storeBytes(of: v, as: SIMD16<Float>.self)
            i += 16
        }
        while i < count {
            out[i] = Float(Float16(bitPattern: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            i += 1
        }
    }

    /// BF16 is the top half of a float32: a shift puts it back.
    static func fromBFloat16(_ bytes: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
        let count = out.count
        var i = 0
        while i + 16 <= count {
            let h = bytes.loadUnaligned(fromByteOffset: 2 * i, as: SIMD16<UInt16>.self)
            let w = SIMD16<UInt32>(truncatingIfNeeded: h) &<< 16
            UnsafeMutableRawPointer(out.baseAddress! + i).storeBytes(of: w, as: SIMD16<UInt32>.self)
            i += 16
        }
        while i < count {
            out[i] = Float(bitPattern: UInt32(bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
            i += 1
        }
    }
}
