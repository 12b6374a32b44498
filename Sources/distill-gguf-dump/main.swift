// distill-gguf-dump: what distilld reads from a GGUF file, as JSON, for the tests that compare it
// with the `gguf` Python package and transformers (Tests/python/test_gguf.py).
//
// Usage: distill-gguf-dump FILE [--model [--repeat N]] [--npy-dir DIR] [--tensors a,b,...]
//
// Without --model: the header (version, alignment, data offset), every metadata value with its
// type, and every tensor record; with --npy-dir, each tensor (or those named by --tensors)
// converted to float32 in its stored order, written as DIR/<gguf name>.npy.
// With --model: the file loaded as a model (GGUFModel): configuration, tokenizer, weights under
// Hugging Face names with their shapes and stored types, memory figures and the load time; with
// --npy-dir the weights as DIR/<Hugging Face name>.npy. --repeat N loads it N times and lists
// each load's wall time (`loadSeconds`), for measuring; tests assert nothing about it.
// A refused file prints {"error": {"code", "message", "tensor", "numbers"}} and exits 1.

import DistillJSON
import DistillModels
import DistillStore
import DistillTokenize
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

func valueJSON(_ v: GGUFValue) -> JSON {
    switch v {
    case .uint8(let x): return JSON(Int(x))
    case .int8(let x): return JSON(Int(x))
    case .uint16(let x): return JSON(Int(x))
    case .int16(let x): return JSON(Int(x))
    case .uint32(let x): return JSON(Int(x))
    case .int32(let x): return JSON(Int(x))
    case .uint64(let x): return x <= UInt64(Int64.max) ? JSON(Int64(x)) : JSON(String(x))
    case .int64(let x): return JSON(x)
    case .float32(let x): return floatJSON(Double(x))
    case .float64(let x): return floatJSON(x)
    case .bool(let x): return JSON(x)
    case .string(let x): return JSON(x)
    case .array(let a): return arrayJSON(a)
    }
}

/// JSON has no NaN or infinity: those are written as the strings numpy's `float()` reads.
func floatJSON(_ x: Double) -> JSON {
    x.isFinite ? JSON(x) : JSON(x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf"))
}

func arrayJSON(_ a: GGUFArray) -> JSON {
    let values: JSON
    switch a {
    case .uint8(let x): values = .array(x.map { JSON(Int($0)) })
    case .int8(let x): values = .array(x.map { JSON(Int($0)) })
    case .uint16(let x): values = .array(x.map { JSON(Int($0)) })
    case .int16(let x): values = .array(x.map { JSON(Int($0)) })
    case .uint32(let x): values = .array(x.map { JSON(Int($0)) })
    case .int32(let x): values = .array(x.map { JSON(Int($0)) })
    case .uint64(let x): values = .array(x.map { valueJSON(.uint64($0)) })
    case .int64(let x): values = .array(x.map { JSON($0) })
    case .float32(let x): values = .array(x.map { floatJSON(Double($0)) })
    case .float64(let x): values = .array(x.map { floatJSON($0) })
    case .bool(let x): values = .array(x.map { JSON($0) })
    case .string(let x): values = .array(x)
    case .arrays(let x): values = .array(x.map(arrayJSON))
    }
    return .object([("elementType", JSON(a.elementTypeName)), ("values", values)])
}

func typeName(_ v: GGUFValue) -> String {
    if case .array = v { return "array" }
    return v.typeName
}

func ropeJSON(_ r: RopeScaling?) -> JSON {
    switch r {
    case nil: return .null
    case .linear(let f): return .object([("type", "linear"), ("factor", JSON(f))])
    case .llama3(let f, let low, let high, let original):
        return .object([
            ("type", "llama3"), ("factor", JSON(f)), ("lowFrequencyFactor", JSON(low)), ("highFrequencyFactor", JSON(high)),
            ("originalMaxPositions", JSON(original)),
        ])
    }
}

func configJSON(_ c: ModelConfig) -> JSON {
    .object([
        ("architecture", JSON(c.architecture.rawValue)), ("vocabSize", JSON(c.vocabSize)), ("hiddenSize", JSON(c.hiddenSize)),
        ("layers", JSON(c.layers)), ("heads", JSON(c.heads)), ("kvHeads", JSON(c.kvHeads)), ("headDim", JSON(c.headDim)),
        ("intermediateSize", JSON(c.intermediateSize)), ("maxPositions", JSON(c.maxPositions)),
        ("normEpsilon", JSON(Double(c.normEpsilon))), ("ropeTheta", JSON(c.ropeTheta)), ("ropeScaling", ropeJSON(c.ropeScaling)),
        ("tiedEmbeddings", JSON(c.tiedEmbeddings)), ("attentionBias", JSON(c.attentionBias)),
    ])
}

func optional(_ v: String?) -> JSON { v.map { JSON($0) } ?? .null }
func optional(_ v: Int?) -> JSON { v.map { JSON($0) } ?? .null }
func optional(_ v: Bool?) -> JSON { v.map { JSON($0) } ?? .null }

func tokenizerJSON(_ t: GGUFTokenizerData) -> JSON {
    let scores: JSON = t.scores.map { s in JSON.array(s.map { floatJSON(Double($0)) }) } ?? .null
    let types: JSON = t.tokenTypes.map { s in JSON.array(s.map { JSON(Int($0)) }) } ?? .null
    let merges: JSON = t.merges.map { JSON.array($0) } ?? .null
    return .object([
        ("model", JSON(t.model)), ("pre", optional(t.pre)), ("tokens", .array(t.tokens)), ("scores", scores),
        ("tokenTypes", types), ("merges", merges), ("bos", optional(t.bos)), ("eos", optional(t.eos)),
        ("unknown", optional(t.unknown)), ("padding", optional(t.padding)), ("addBos", optional(t.addBos)),
        ("addEos", optional(t.addEos)), ("chatTemplate", optional(t.chatTemplate)),
    ])
}

/// Writes float32 values as a NumPy .npy file (format 1.0, little-endian, C order).
func writeNpy(_ path: String, _ buffer: WeightBuffer) throws {
    let dims = buffer.shape.map(String.init)
    let shape = dims.count == 1 ? "(\(dims[0]),)" : "(\(dims.joined(separator: ", ")))"
    var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }"
    let total = 10 + header.utf8.count + 1
    header += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
    var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
    bytes += [UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
    bytes += Array(header.utf8)
    guard let f = fopen(path, "wb") else { throw StoreError(.unreadable, "cannot create \(path)") }
    defer { fclose(f) }
    fwrite(bytes, 1, bytes.count, f)
    if buffer.pointer.count > 0 { fwrite(buffer.pointer.baseAddress!, 4, buffer.pointer.count, f) }
}

func fail(_ error: Error) -> Never {
    let body: JSON
    if let e = error as? StoreError {
        body = .object([
            ("code", JSON(e.code.rawValue)), ("message", JSON(e.message)), ("tensor", optional(e.tensor)),
            ("numbers", .object(e.numbers.sorted { $0.key < $1.key }.map { ($0.key, JSON($0.value)) })),
        ])
    } else {
        body = .object([("code", "other"), ("message", JSON("\(error)"))])
    }
    print(JSON.object([("error", body)]).serializedString())
    exit(1)
}

var arguments = Array(CommandLine.arguments.dropFirst())
var modelMode = false
var npyDir: String?
var only: Set<String>?
var path: String?
var repeats = 1
while !arguments.isEmpty {
    let a = arguments.removeFirst()
    switch a {
    case "--model": modelMode = true
    case "--repeat": repeats = arguments.isEmpty ? 1 : Int(arguments.removeFirst()) ?? 1
    case "--npy-dir": npyDir = arguments.isEmpty ? nil : arguments.removeFirst()
    case "--tensors": only = arguments.isEmpty ? [] : Set(arguments.removeFirst().split(separator: ",").map(String.init))
    default: path = a
    }
}
guard let path else {
    FileHandle.standardError.write("usage: distill-gguf-dump FILE [--model] [--npy-dir DIR] [--tensors a,b,...]\n".data(using: .utf8)!)
    exit(2)
}

do {
    if modelMode {
        var seconds: [Double] = []
        var loaded: GGUFModel?
        for _ in 0..<max(1, repeats) {
            loaded = nil
            let start = DispatchTime.now()
            loaded = try GGUFModel(path: path)
            seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9)
        }
        let model = loaded!
        var weights: [JSON] = []
        for name in model.names {
            guard let info = model.info(name) else { continue }
            weights.append(
                .object([
                    ("name", JSON(name)), ("gguf", JSON(model.ggufNames[name] ?? "")), ("shape", .array(info.shape)),
                    ("stored", JSON(info.stored.rawValue)), ("transposed", JSON(try model.float32(name).transposed)),
                ]))
            if let npyDir, only?.contains(name) ?? true { try writeNpy("\(npyDir)/\(name).npy", try model.float32(name)) }
        }
        let out = JSON.object([
            ("config", configJSON(model.config)), ("tokenizer", tokenizerJSON(model.tokenizer)), ("weights", .array(weights)),
            ("residentBytes", JSON(model.residentBytes)), ("mappedBytes", JSON(model.mappedBytes)),
            ("sourceType", JSON(model.sourceType.rawValue)), ("parameters", JSON(model.parameters)), ("loadSeconds", .array(seconds)),
        ])
        print(out.serializedString())
    } else {
        let file = try GGUFFile(path: path)
        var tensors: [JSON] = []
        for t in file.tensors {
            tensors.append(
                .object([
                    ("name", JSON(t.name)), ("type", JSON(t.type.name)), ("typeNumber", JSON(Int(t.type.rawValue))),
                    ("shape", .array(t.shape)), ("offset", JSON(t.offset)), ("byteCount", JSON(t.byteCount)),
                ]))
            if let npyDir, only?.contains(t.name) ?? true { try writeNpy("\(npyDir)/\(t.name).npy", try file.float32(t)) }
        }
        let metadata = JSON.object(
            file.keys.map { key in
                let v = file.metadata[key]!
                return (key, .object([("type", JSON(typeName(v))), ("value", valueJSON(v))]))
            })
        let out = JSON.object([
            ("version", JSON(Int(file.version))), ("alignment", JSON(file.alignment)), ("dataOffset", JSON(file.dataOffset)),
            ("keys", .array(file.keys)), ("metadata", metadata), ("tensors", .array(tensors)),
        ])
        print(out.serializedString())
    }
} catch {
    fail(error)
}
