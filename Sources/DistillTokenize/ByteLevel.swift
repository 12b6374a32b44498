/// GPT-2's reversible spelling of bytes as printable characters.
///
/// Byte-level BPE works on UTF-8 bytes, but its vocabulary is written as text: each byte is
/// spelled by one scalar, the printable Latin-1 bytes by themselves and the others (controls,
/// space, 0x7F-0xA0, 0xAD) by the scalars from U+0100 upwards in byte order, so that a space is
/// "Ġ" (U+0120) and a line feed "Ċ" (U+010A).
enum ByteLevel {
    /// The scalar spelling each byte.
    static let scalarForByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
            if printable {
                table[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                table[byte] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The byte a scalar spells, for scalars below U+0144 (-1 for scalars that spell none).
    static let byteForScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (byte, scalar) in scalarForByte.enumerated() { table[Int(scalar.value)] = Int16(byte) }
        return table
    }()

    /// The byte `scalar` spells, if it is one of the 256 spellings.
    @inline(__always)
    static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        guard scalar.value < 0x144 else { return nil }
        let b = byteForScalar[Int(scalar.value)]
        return b < 0 ? nil : UInt8(b)
    }

    /// `scalars` as the spellings of their UTF-8 bytes.
    static func spell(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(scalars.count + scalars.count / 2)
        for scalar in scalars {
            if scalar.value < 0x80 {
                out.append(scalarForByte[Int(scalar.value)])
            } else {
                for byte in UTF8.encode(scalar)! { out.append(scalarForByte[Int(byte)]) }
            }
        }
        return out
    }

    /// A text spelled in bytes, as `spell` would write it (used on GGUF vocabularies whose
    /// entries are not all in the byte alphabet).
    static func spell(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for byte in text.utf8 { out.append(scalarForByte[Int(byte)]) }
        return String(out)
    }

    /// Whether every scalar of `text` is one of the 256 byte spellings.
    static func isSpelledInBytes(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy { byte(for: $0) != nil }
    }
}
