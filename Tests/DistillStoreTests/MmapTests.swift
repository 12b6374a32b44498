import DistillTensor
import Foundation
import Testing

@testable import DistillStore

#if canImport(Glibc)
    import Glibc
#endif

/// Resident set size of this process, from /proc/self/statm.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    return (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// Whether this process runs under ThreadSanitizer (`make sanitize-thread`) or
/// AddressSanitizer (`make sanitize-address`). Their shadow memory counts in the resident
/// set: ThreadSanitizer gives every 8 bytes the scan reads shadow cells of their own (a
/// scan of a 512 MiB map grows the process by about 1 GiB that is not the data), and
/// AddressSanitizer one shadow byte per 8 bytes checked (64 MiB).
let underThreadSanitizer = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__tsan_init") != nil
let underAddressSanitizer = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") != nil

/// Resident bytes of the mappings of one file, from /proc/self/smaps (nil: not mapped).
func residentBytes(mapping path: String) -> Int? {
    // Read to the end by hand: Foundation stops at the first page of a /proc file.
    let fd = open("/proc/self/smaps", O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    var inFile = false
    var total: Int? = nil
    for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
        if let first = line.first, first.isHexDigit, line.contains("-") {
            inFile = line.hasSuffix(path)
        } else if inFile, line.hasPrefix("Rss:") {
            total = (total ?? 0) + (Int(line.split(separator: " ")[1]) ?? 0) << 10
        }
    }
    return total
}

struct MmapTests {
    /// A 512 MiB float32 safetensors file (header written, data extended with
    /// ftruncate plus a few real values) loads quickly and without making the
    /// data resident: the values point into the map and the validation scan
    /// releases its pages as it goes.
    @Test func largeFileIsMappedNotCopied() throws {
        let dir = TempDir()
        let rows = 512
        let vocab = 262_144  // 512 × 262144 × 4 B = 512 MiB
        let dataBytes = rows * vocab * 4
        let header = safetensorsBytes([("logits", "F32", [rows, vocab], [])], offsetsOverride: ["logits": (0, dataBytes)])
        let path = dir.file("big.safetensors")
        let fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0o644)
        #expect(fd >= 0)
        _ = header.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        #expect(ftruncate(fd, off_t(header.count + dataBytes)) == 0)
        // A few real values (one −∞) at the end of the data.
        let tail: [Float] = [1.5, -.infinity, 2.5]
        _ = tail.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(header.count + dataBytes - 12)) }
        close(fd)

        var fractions: [Double] = []
        let before = residentBytes()
        let start = Date()
        let t = try TeacherLoader.load(TeacherSource(path: path), progress: { fractions.append($0) })
        let seconds = Date().timeIntervalSince(start)
        let grown = residentBytes() - before
        let mapped = residentBytes(mapping: path)
        print(
            "mmap: loaded \(dataBytes >> 20) MiB safetensors in \(String(format: "%.3f", seconds)) s; resident grew \(grown >> 20) MiB"
                + ", of which the map \((mapped ?? -1) >> 20) MiB")
        #expect(values(t.outputs).shape == [rows, 1, vocab])
        #expect(t.mappedBytes == header.count + dataBytes)
        #expect(t.residentBytes == 0)
        #expect(t.nonFinite == NonFiniteCounts(nan: 0, posInf: 0, negInf: 1))
        // The map itself holds almost nothing resident after the scan.
        #expect(mapped != nil)
        #expect((mapped ?? .max) < 64 << 20)
        // And nothing was copied: a copy would grow the process by the whole 512 MiB. The
        // bound is loose because the process is shared (other tests run in parallel) and
        // AddressSanitizer's shadow for the scan counts; ThreadSanitizer's is twice the data.
        if !underThreadSanitizer {
            #expect(grown < dataBytes / 2)
        }
        if !underThreadSanitizer && !underAddressSanitizer {
            #expect(seconds < 30)
        }
        #expect(fractions.count >= 60)
        #expect(fractions.last == 1)
        #expect(zip(fractions, fractions.dropFirst()).allSatisfy { $0 <= $1 })
        // Reading a value faults its page in from the file.
        let last = values(t.outputs).storage.base.load(fromByteOffset: dataBytes - 12, as: Float.self)
        #expect(last == 1.5)
    }

    @Test func cancellationStopsTheScan() throws {
        let dir = TempDir()
        let n = 6 << 20  // 24 MiB: three chunks
        let header = safetensorsBytes([("logits", "F32", [1, n], [])], offsetsOverride: ["logits": (0, n * 4)])
        let path = dir.write("c.safetensors", header)
        #expect(truncate(path, off_t(header.count + n * 4)) == 0)
        var calls = 0
        #expect(throws: CancellationError.self) {
            _ = try TeacherLoader.load(
                TeacherSource(path: path),
                isCancelled: {
                    calls += 1
                    return calls >= 2
                })
        }
        #expect(calls == 2)
    }
}
