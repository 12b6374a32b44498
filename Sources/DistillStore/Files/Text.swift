/// Splits a byte buffer into lines ('\n', with a trailing '\r' dropped), calling
/// `body` with the 1-based line number and the line's bytes. A final newline
/// does not start an extra line.
func forEachLine(
    _ bytes: UnsafeRawBufferPointer, _ body: (Int, UnsafeRawBufferPointer) throws -> Void
) rethrows {
    var line = 1
    var start = 0
    let n = bytes.count
    guard let base = bytes.baseAddress else { return }
    while start < n {
        let rest = UnsafeRawBufferPointer(start: base + start, count: n - start)
        var end: Int
        if let nl = memchrIndex(rest, 0x0A) {
            end = start + nl
        } else {
            end = n
        }
        var stop = end
        if stop > start, bytes[stop - 1] == 0x0D { stop -= 1 }
        try body(line, UnsafeRawBufferPointer(start: base + start, count: stop - start))
        line += 1
        start = end + 1
    }
}

@inline(__always)
private func memchrIndex(_ buf: UnsafeRawBufferPointer, _ byte: UInt8) -> Int? {
    guard let b = buf.baseAddress, buf.count > 0 else { return nil }
    guard let p = memchr(b, Int32(byte), buf.count) else { return nil }
    return UnsafeRawPointer(p) - b
}

/// The offset of the first byte that does not start or continue a valid UTF-8
/// sequence (overlong forms, surrogates and code points past U+10FFFF are
/// invalid), or nil when all of `bytes` is valid UTF-8.
func firstInvalidUTF8(_ bytes: UnsafeRawBufferPointer) -> Int? {
    let n = bytes.count
    var i = 0
    while i < n {
        let c = bytes[i]
        if c < 0x80 {
            i += 1
            continue
        }
        let need: Int
        var scalar: UInt32
        let least: UInt32
        if c & 0xE0 == 0xC0 {
            (need, scalar, least) = (1, UInt32(c & 0x1F), 0x80)
        } else if c & 0xF0 == 0xE0 {
            (need, scalar, least) = (2, UInt32(c & 0x0F), 0x800)
        } else if c & 0xF8 == 0xF0 {
            (need, scalar, least) = (3, UInt32(c & 0x07), 0x10000)
        } else {
            return i
        }
        guard i + need < n else { return i }
        for k in 1...need {
            let d = bytes[i + k]
            guard d & 0xC0 == 0x80 else { return i }
            scalar = scalar << 6 | UInt32(d & 0x3F)
        }
        if scalar < least || scalar > 0x10FFFF || (0xD800...0xDFFF).contains(scalar) { return i }
        i += need + 1
    }
    return nil
}

/// Refuses text that is not valid UTF-8, naming the line, the column (byte
/// within the line, 1-based) and the byte offset in the file of the first bad byte.
func checkUTF8(_ bytes: UnsafeRawBufferPointer, path: String) throws {
    guard let bad = firstInvalidUTF8(bytes) else { return }
    var line = 1
    var lineStart = 0
    for i in 0..<bad where bytes[i] == 0x0A {
        line += 1
        lineStart = i + 1
    }
    let column = bad - lineStart + 1
    let hex = String(bytes[bad], radix: 16, uppercase: true)
    throw fileError(
        .invalidUTF8, path, line: line, numbers: ["column": column, "byte": bad],
        "invalid UTF-8 at column \(column) (byte 0x\(hex.count == 1 ? "0" + hex : hex) at offset \(bad)); the file must be UTF-8 text")
}

/// Whether a line holds only spaces/tabs.
func isBlank(_ line: UnsafeRawBufferPointer) -> Bool {
    line.allSatisfy { $0 == 0x20 || $0 == 0x09 }
}

/// The first byte that is not white space, if any.
func firstNonSpace(_ bytes: UnsafeRawBufferPointer) -> UInt8? {
    bytes.first { !($0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D) }
}

/// Strips a UTF-8 byte-order mark.
func droppingBOM(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
    if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF, let b = bytes.baseAddress {
        return UnsafeRawBufferPointer(start: b + 3, count: bytes.count - 3)
    }
    return bytes
}

/// The 1-based line on which each top-level element of a JSON array starts,
/// found by a byte scan that tracks strings and nesting (jansson does not report
/// positions of values).
func topLevelElementLines(_ bytes: UnsafeRawBufferPointer) -> [Int] {
    var lines: [Int] = []
    var line = 1
    var depth = 0
    var inString = false
    var escaped = false
    var expectingElement = false
    for b in bytes {
        if b == 0x0A { line += 1 }
        if inString {
            if escaped {
                escaped = false
            } else if b == 0x5C {
                escaped = true
            } else if b == 0x22 {
                inString = false
            }
            continue
        }
        switch b {
        case 0x20, 0x09, 0x0A, 0x0D:
            continue
        default:
            break
        }
        if depth == 1 && expectingElement && b != 0x5D {
            lines.append(line)
            expectingElement = false
        }
        switch b {
        case 0x22: inString = true
        case 0x5B, 0x7B:
            depth += 1
            if depth == 1 { expectingElement = true }
        case 0x5D, 0x7D: depth -= 1
        case 0x2C: if depth == 1 { expectingElement = true }
        default: break
        }
    }
    return lines
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
