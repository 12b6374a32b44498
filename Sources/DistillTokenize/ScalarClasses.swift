/// The character classes the pre-tokenizer patterns use, by Unicode scalar.
///
/// The reference tokenizers match their split patterns with a regex engine (Oniguruma in the
/// `tokenizers` package) whose `\p{L}`, `\p{N}` and `\s` follow one Unicode version. The standard
/// library's tables may be newer: scalars assigned after `referenceUnicodeMajor` are unassigned
/// (neither letter nor number) to the reference, so they are here too. Without this cap a
/// character new in Unicode 17 would be a letter here and punctuation there, and the two would
/// split a word differently. `\s` is the White_Space property, which has not changed since.
enum ScalarClass {
    static let letter: UInt8 = 1
    static let number: UInt8 = 2
    static let whitespace: UInt8 = 4
    /// Carriage return or line feed (also whitespace).
    static let newline: UInt8 = 8

    /// The newest Unicode version whose assignments the reference's regex tables know (16.0 for
    /// the Oniguruma in tokenizers 0.23: U+1C89, new in 16.0, is a letter there).
    static let referenceUnicodeMajor = 16

    private static let ascii: [UInt8] = (0..<128).map { classify(Unicode.Scalar(UInt8($0))) }

    /// The class bits of one scalar.
    @inline(__always)
    static func of(_ scalar: Unicode.Scalar) -> UInt8 {
        scalar.value < 128 ? ascii[Int(scalar.value)] : classify(scalar)
    }

    private static func classify(_ scalar: Unicode.Scalar) -> UInt8 {
        if scalar == "\r" || scalar == "\n" { return whitespace | newline }
        let properties = scalar.properties
        if properties.isWhitespace { return whitespace }
        guard let age = properties.age, age.major <= referenceUnicodeMajor else { return 0 }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return number
        default:
            return 0
        }
    }

    /// The classes of every scalar of `scalars`.
    static func of<C: Collection>(_ scalars: C) -> [UInt8] where C.Element == Unicode.Scalar {
        scalars.map { of($0) }
    }

    /// `\w` as the Rust regex crate defines it (Alphabetic, marks, decimal digits, connector
    /// punctuation, Join_Control): the word test of added tokens marked `single_word`.
    static func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value < 128 {
            let v = scalar.value
            return (v >= 0x30 && v <= 0x39) || (v >= 0x41 && v <= 0x5A) || (v >= 0x61 && v <= 0x7A) || v == 0x5F
        }
        let properties = scalar.properties
        if properties.isAlphabetic || properties.isJoinControl { return true }
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }

    /// White_Space, as Rust's `char::is_whitespace` and regex `\s` define it.
    @inline(__always)
    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool { of(scalar) & whitespace != 0 }

    /// Rust's `char::is_numeric` (general categories Nd, Nl, No), for the Digits pre-tokenizer.
    /// Unlike the regex classes this is not capped: Rust's own tables in the reference build are
    /// as new as the standard library's here (U+16FF4, new in Unicode 17, is numeric to both).
    static func isNumeric(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value < 128 { return scalar.value >= 0x30 && scalar.value <= 0x39 }
        switch scalar.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }
}
