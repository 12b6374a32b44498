import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where ARPA text comes from: a file read in chunks, or bytes already in memory.
///
/// Lines go to a callback as a buffer that is valid only during the call, so a
/// file of any size is read with one 1 MiB buffer instead of being copied whole
/// into memory first. A final `\r` (CRLF files) is dropped; the last line need not
/// end in a newline.
enum LineSource {
    case file(String)
    case bytes([UInt8])

    /// Calls `body` with each line and its 1-based number; returns the number of lines.
    func forEachLine(_ body: (UnsafeBufferPointer<UInt8>, Int) throws -> Void) throws -> Int {
        switch self {
        case .bytes(let bytes):
            return try bytes.withUnsafeBufferPointer { try Self.split($0, startingAt: 1, final: true, body).lines }
        case .file(let path):
            return try Self.readFile(path, body)
        }
    }

    /// Splits `buffer` into lines; without `final` an unterminated tail is left for
    /// the next chunk and its length returned as `rest`.
    private static func split(
        _ buffer: UnsafeBufferPointer<UInt8>, startingAt firstLine: Int, final: Bool,
        _ body: (UnsafeBufferPointer<UInt8>, Int) throws -> Void
    ) throws -> (lines: Int, rest: Int) {
        var line = firstLine
        var start = 0
        var i = 0
        let n = buffer.count
        while i < n {
            if buffer[i] == 0x0A {
                try body(trimCR(UnsafeBufferPointer(rebasing: buffer[start..<i])), line)
                line += 1
                start = i + 1
            }
            i += 1
        }
        if start < n {
            if !final { return (line - firstLine, n - start) }
            try body(trimCR(UnsafeBufferPointer(rebasing: buffer[start..<n])), line)
            line += 1
        }
        return (line - firstLine, 0)
    }

    private static func trimCR(_ line: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
        if let last = line.last, last == 0x0D { return UnsafeBufferPointer(rebasing: line.dropLast()) }
        return line
    }

    private static func readFile(_ path: String, _ body: (UnsafeBufferPointer<UInt8>, Int) throws -> Void) throws -> Int {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            let reason = e == ENOENT ? "no such file" : String(cString: strerror(e))
            throw NGramError(.file, path: path, "cannot open the ARPA file: \(reason)")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw NGramError(.file, path: path, "not a regular file; an ARPA model is a text file")
        }
        let chunk = 1 << 20
        var buffer = [UInt8](repeating: 0, count: chunk)
        var filled = 0
        var nextLine = 1
        var first = true
        while true {
            if filled == buffer.count { buffer.append(contentsOf: repeatElement(0, count: buffer.count)) }
            let got = buffer.withUnsafeMutableBytes { raw in
                read(fd, raw.baseAddress! + filled, raw.count - filled)
            }
            if got < 0 {
                if errno == EINTR { continue }
                throw NGramError(.file, path: path, "cannot read the ARPA file: \(String(cString: strerror(errno)))")
            }
            if first {
                first = false
                try checkMagic(buffer.prefix(filled + got), path: path)
            }
            let end = got == 0
            filled += got
            let (lines, rest) = try buffer.withUnsafeBufferPointer {
                try split(UnsafeBufferPointer(rebasing: $0[0..<filled]), startingAt: nextLine, final: end, body)
            }
            nextLine += lines
            if end { return nextLine - 1 }
            if rest > 0 && rest < filled {
                buffer.withUnsafeMutableBufferPointer { b in
                    b.baseAddress!.update(from: b.baseAddress! + (filled - rest), count: rest)
                }
            }
            filled = rest
        }
    }

    /// Names the two files people most often hand over instead of ARPA text.
    private static func checkMagic(_ head: ArraySlice<UInt8>, path: String) throws {
        if head.starts(with: [0x1F, 0x8B]) {
            throw NGramError(.file, path: path, "the file is gzip-compressed; decompress it (gunzip) and load the ARPA text")
        }
        if head.starts(with: Array("mmap lm ".utf8)) {
            throw NGramError(.file, path: path, "this is a kenlm binary model; load the ARPA text it was built from")
        }
    }
}
