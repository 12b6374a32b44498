import DistillJSON
import DistillTensor
import Foundation
import Testing

@testable import DistillStore

/// A fresh temporary directory, removed when the value goes.
final class TempDir: Sendable {
    let path: String

    init() {
        let base = NSTemporaryDirectory() + "distillstore-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        path = base
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }

    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) -> String {
        let p = file(name)
        _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }

    @discardableResult
    func write(_ name: String, _ text: String) -> String { write(name, Array(text.utf8)) }
}

/// Fixtures written by Tests/python/make_store_fixtures.py (numpy + safetensors).
enum Fixtures {
    static let scriptPath: String = {
        let here = URL(fileURLWithPath: #filePath)
        return here.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("python/make_store_fixtures.py").path
    }()

    /// Runs a command, returning its exit status and combined output.
    static func run(_ args: [String]) -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        do { try p.run() } catch { return (-1, "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The directory holding the fixtures, or nil (with `skipReason`) when python3
    /// with numpy and safetensors is not available.
    static var directory: TempDir? { prepared.directory }
    static var skipReason: String { prepared.skipReason }

    private static let prepared: (directory: TempDir?, skipReason: String) = {
        let (status, out) = run(["python3", "-c", "import numpy, safetensors"])
        guard status == 0 else {
            return (nil, "python3 with numpy and safetensors is not importable (pip install numpy safetensors): \(out)")
        }
        let dir = TempDir()
        let (s2, out2) = run(["python3", scriptPath, dir.path])
        guard s2 == 0 else { return (nil, "make_store_fixtures.py failed: \(out2)") }
        return (dir, "")
    }()

    static var available: Bool { directory != nil }

    static func path(_ name: String) -> String { directory!.file(name) }

    static let values: JSON = {
        let map = try! MappedFile(path: path("values.json"))
        return try! map.withBytes { try JSON.parse($0) }
    }()
}

/// Decodes any float tensor to [Float].
func floats(_ t: Tensor) -> [Float] {
    let b = t.storage.base
    return (0..<t.elementCount).map { i in
        switch t.dtype {
        case .float32: return b.loadUnaligned(fromByteOffset: i * 4, as: Float.self)
        case .float16: return halfToFloat(b.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))
        case .bfloat16: return Float(bitPattern: UInt32(b.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) << 16)
        case .float64: return Float(b.loadUnaligned(fromByteOffset: i * 8, as: Double.self))
        default: return .nan
        }
    }
}

func ints(_ t: Tensor) -> [Int] {
    let b = t.storage.base
    return (0..<t.elementCount).map { i in
        switch t.dtype {
        case .int32: return Int(b.loadUnaligned(fromByteOffset: i * 4, as: Int32.self))
        case .int64: return Int(b.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))
        case .uint8, .bool: return Int(b.load(fromByteOffset: i, as: UInt8.self))
        default: return -999
        }
    }
}

func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exp = Int((h >> 10) & 0x1F)
    let man = UInt32(h & 0x3FF)
    if exp == 0 {
        let v = Float(man) * Float(sign != 0 ? -1 : 1) / Float(1 << 24)
        return v
    }
    if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (man << 13)) }
    return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | man << 13)
}

/// Expected floats from values.json (null = −∞).
func expectedFloats(_ j: JSON?) -> [Float] {
    (j?.arrayValue ?? []).map { $0.isNull ? -.infinity : Float($0.doubleValue!) }
}

func expectedInts(_ j: JSON?) -> [Int] { (j?.arrayValue ?? []).map { $0.intValue! } }
func expectedStrings(_ j: JSON?) -> [String] { (j?.arrayValue ?? []).map { $0.stringValue! } }

func values(_ o: ModelOutputs) -> Tensor {
    switch o.layout {
    case .dense(let v): return v
    case .topK(_, let v): return v
    }
}

func indices(_ o: ModelOutputs) -> Tensor? {
    if case .topK(let i, _) = o.layout { return i }
    return nil
}

/// Builds safetensors bytes by hand: (name, dtype, shape, bytes) with offsets in
/// order, or an explicit header.
func safetensorsBytes(
    _ tensors: [(String, String, [Int], [UInt8])], metadata: [String: String]? = nil,
    headerOverride: String? = nil, offsetsOverride: [String: (Int, Int)] = [:]
) -> [UInt8] {
    let header = JSON.object()
    var data: [UInt8] = []
    for (name, dtype, shape, bytes) in tensors {
        let begin = data.count
        data += bytes
        let (b, e) = offsetsOverride[name] ?? (begin, data.count)
        header[name] = JSON.object([
            ("dtype", JSON(dtype)), ("shape", JSON.array(shape)), ("data_offsets", JSON.array([b, e])),
        ])
    }
    if let metadata {
        let m = JSON.object()
        for (k, v) in metadata { m[k] = JSON(v) }
        header["__metadata__"] = m
    }
    var h = headerOverride.map { Array($0.utf8) } ?? header.serialized(sortKeys: true)
    while h.count % 8 != 0 { h.append(0x20) }
    var out: [UInt8] = []
    withUnsafeBytes(of: UInt64(h.count).littleEndian) { out += $0 }
    return out + h + data
}

func f32Bytes(_ values: [Float]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }
func i64Bytes(_ values: [Int64]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }
func i32Bytes(_ values: [Int32]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

/// Runs `body` expecting a StoreError and returns it.
func storeError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> StoreError? {
    do {
        try body()
        Issue.record("expected a StoreError", sourceLocation: sourceLocation)
        return nil
    } catch let e as StoreError {
        return e
    } catch {
        Issue.record("expected a StoreError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
