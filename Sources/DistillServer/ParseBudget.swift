import DistillJSON
import DistillProtocol

#if canImport(Glibc)
    import Glibc
#endif

/// Refuses, before parsing, a message whose parsed form would not fit in memory.
///
/// jansson needs several times a text's size to hold its values (up to about 20 times
/// for arrays of small numbers). A 2 GB message used to grow the daemon to 7.8 GB and
/// end, minutes later, in an allocation failure; now it is refused up front.
enum ParseBudget {
    /// Smaller messages are parsed without a check: at most about 20 MiB of values.
    static let threshold = 1 << 20

    /// The error to answer instead of parsing `body`, or nil to go ahead.
    static func refusal(for body: [UInt8], memoryBudget: Int?) -> ResponseError? {
        guard body.count >= threshold else { return nil }
        let needed = body.withUnsafeBytes { JSON.parseMemoryEstimate($0) }
        var limits: [(bytes: Int, source: String)] = []
        if let memoryBudget { limits.append((memoryBudget, "memoryBudget")) }
        if let available = availableMemory() { limits.append((available, "availableMemory")) }
        guard let limit = limits.min(by: { $0.bytes < $1.bytes }), needed > limit.bytes else { return nil }
        let what =
            limit.source == "memoryBudget" ? "the --memory-budget of \(limit.bytes) bytes" : "the \(limit.bytes) bytes of memory available"
        return ResponseError(
            code: .limitExceeded,
            message:
                "Message too large to parse: its \(body.count) bytes would take about \(needed) bytes as JSON values, more than \(what)",
            data: [
                "reason": "parseMemory", "limit": JSON(limit.bytes), "limitSource": JSON(limit.source), "needed": JSON(needed),
                "messageBytes": JSON(body.count),
            ])
    }

    /// What the process may still allocate: the kernel's MemAvailable, lowered by a
    /// cgroup (v2) memory limit when there is one. nil where neither can be read.
    static func availableMemory() -> Int? {
        var result: Int? = nil
        if let meminfo = readSmallFile("/proc/meminfo"),
            let line = meminfo.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
            let kib = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        {
            result = kib * 1024
        }
        if let max = readSmallFile("/sys/fs/cgroup/memory.max").flatMap({ Int($0.trimmingSpaces()) }),
            let current = readSmallFile("/sys/fs/cgroup/memory.current").flatMap({ Int($0.trimmingSpaces()) })
        {
            let room = Swift.max(0, max - current)
            result = Swift.min(result ?? room, room)
        }
        return result
    }

    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 16384)
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return String(decoding: bytes[..<n], as: UTF8.self)
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        String(self.drop(while: { $0 == " " || $0 == "\n" }).reversed().drop(while: { $0 == " " || $0 == "\n" }).reversed())
    }
}
