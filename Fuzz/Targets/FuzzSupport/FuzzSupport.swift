import DistillSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A file that fuzz targets rewrite for each input, so that the readers that take a
/// path read the fuzzer's bytes: made in /dev/shm (memory) and unlinked at once, it is
/// reopened through `/proc/self/fd/N` and leaves nothing behind.
public final class ScratchFile: Sendable {
    public let fd: Int32
    /// A path that opens this file: `/proc/self/fd/N`.
    public let path: String

    public init(name: String) {
        let directory = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        var template = Array("\(directory)/distilld-\(name)-XXXXXX".utf8CString)
        fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        precondition(fd >= 0, "mkstemp failed")
        unlink(template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        path = "/proc/self/fd/\(fd)"
    }

    /// Replaces the file's contents with `bytes`.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        precondition(ftruncate(fd, 0) == 0)
        var offset = 0
        while offset < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + offset, bytes.count - offset, off_t(offset))
            precondition(n > 0, "pwrite failed")
            offset += n
        }
    }
}

/// A scratch directory under the system temporary directory, made once per process.
public func makeScratchDirectory() -> String {
    var template = Array("/tmp/distilld-fuzz-XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(made != nil, "mkdtemp failed")
    return String(cString: template)
}

/// Writes `bytes` to `path`, replacing it.
public func writeFile(_ path: String, _ bytes: [UInt8]) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    precondition(fd >= 0, "cannot create \(path)")
    defer { close(fd) }
    precondition(bytes.withUnsafeBytes { writeAll(to: fd, $0) } == 0, "cannot write \(path)")
}

/// A safetensors file: `tensors` are (name, dtype, shape, raw little-endian bytes).
public func safetensors(_ tensors: [(String, String, [Int], [UInt8])], metadata: String? = nil) -> [UInt8] {
    var header = "{"
    var data: [UInt8] = []
    var parts: [String] = []
    if let metadata { parts.append("\"__metadata__\":\(metadata)") }
    for (name, dtype, shape, bytes) in tensors {
        let dims = shape.map(String.init).joined(separator: ",")
        parts.append(
            "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":[\(dims)],\"data_offsets\":[\(data.count),\(data.count + bytes.count)]}")
        data += bytes
    }
    header += parts.joined(separator: ",") + "}"
    var h = Array(header.utf8)
    while h.count % 8 != 0 { h.append(0x20) }
    var out: [UInt8] = []
    withUnsafeBytes(of: UInt64(h.count).littleEndian) { out += $0 }
    return out + h + data
}

/// Float32 values as little-endian bytes.
public func float32Bytes(_ values: [Float]) -> [UInt8] {
    var out: [UInt8] = []
    for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 } }
    return out
}

/// Runs `body` on one input: its first byte, which the target reads as its choices (which
/// reader, which options), and the bytes after it. An empty input is skipped. Bad input must
/// be refused with a `Refusal` and nothing else: any other error stops the fuzzer.
public func fuzzInput<Refusal: Error>(
    _ data: UnsafePointer<UInt8>, _ size: Int, refusing: Refusal.Type,
    _ body: (_ control: UInt8, _ rest: UnsafeRawBufferPointer) throws -> Void
) -> CInt {
    guard size >= 1 else { return 0 }
    expectRefusals(Refusal.self) { try body(data[0], UnsafeRawBufferPointer(start: data + 1, count: size - 1)) }
    return 0
}

/// Runs `body`, taking a thrown `Refusal` as the answer to bad input and stopping the fuzzer
/// on any other error.
public func expectRefusals<Refusal: Error>(_: Refusal.Type, _ body: () throws -> Void) {
    do {
        try body()
    } catch is Refusal {
    } catch {
        fatalError("not a \(Refusal.self): \(type(of: error)): \(error)")
    }
}

public typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: FuzzCallback
) -> CInt

/// Runs libFuzzer's driver on `callback`. SwiftPM links an executable target's entry
/// point as `<Target>_main`, so each target defines that symbol and calls this.
public func runFuzzer(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ callback: FuzzCallback
) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, callback)
}
