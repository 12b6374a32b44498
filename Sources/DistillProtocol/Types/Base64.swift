/// Standard base64 (RFC 4648 §4) decoding straight into caller-provided memory: the `data` of a
/// binary array (Protocol/README.md, "Binary arrays") becomes a tensor's bytes without a copy between.
public enum Base64 {
    private static let table: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            t[Int(c)] = UInt8(i)
        }
        return t
    }()

    /// The decoded length of `input`, or nil when it is not well-formed padded base64.
    public static func decodedLength(_ input: UnsafeRawBufferPointer) -> Int? {
        let n = input.count
        guard n % 4 == 0 else { return nil }
        if n == 0 { return 0 }
        var padding = 0
        if input[n - 1] == UInt8(ascii: "=") { padding += 1 }
        if input[n - 2] == UInt8(ascii: "=") { padding += 1 }
        return n / 4 * 3 - padding
    }

    /// Decodes into `out` (exactly `decodedLength` bytes). Returns the offset of the first
    /// bad character, or nil on success.
    public static func decode(_ input: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Int? {
        let n = input.count
        guard n > 0 else { return nil }
        return table.withUnsafeBufferPointer { t -> Int? in
            var o = 0
            var i = 0
            let fullQuads = (n / 4) - 1
            for _ in 0..<fullQuads {
                let a = t[Int(input[i])], b = t[Int(input[i + 1])], c = t[Int(input[i + 2])], d = t[Int(input[i + 3])]
                if (a | b | c | d) & 0xC0 != 0 {
                    return i + [a, b, c, d].firstIndex(where: { $0 & 0xC0 != 0 })!
                }
                let v = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                out[o] = UInt8(truncatingIfNeeded: v >> 16)
                out[o + 1] = UInt8(truncatingIfNeeded: v >> 8)
                out[o + 2] = UInt8(truncatingIfNeeded: v)
                o += 3
                i += 4
            }
            // Last quad, with padding.
            var v: UInt32 = 0
            var count = 0
            for k in 0..<4 {
                let ch = input[i + k]
                if ch == UInt8(ascii: "=") {
                    if k < 2 { return i + k }
                    // Only padding may follow padding.
                    for rest in (k + 1)..<4 where input[i + rest] != UInt8(ascii: "=") { return i + rest }
                    break
                }
                let x = t[Int(ch)]
                if x & 0xC0 != 0 { return i + k }
                v = v << 6 | UInt32(x)
                count += 1
            }
            v <<= UInt32(6 * (4 - count))
            let bytes = count - 1
            for k in 0..<bytes { out[o + k] = UInt8(truncatingIfNeeded: v >> UInt32(16 - 8 * k)) }
            return nil
        }
    }
}
