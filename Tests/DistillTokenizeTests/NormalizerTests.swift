import Testing

@testable import DistillTokenize

/// Unicode normalization against the `tokenizers` package's normalizers on the same inputs
/// (normalize_str, tokenizers 0.23.3). The Python tests compare thousands of random strings;
/// these pin the cases where Foundation's own normalization and newer Unicode tables differ.
@Suite("Unicode normalization")
struct NormalizerTests {
    func scalars(_ normalizer: Normalizer, _ text: String) -> [UInt32] {
        normalizer.apply(Array(text.unicodeScalars)).map(\.value)
    }

    @Test func marksFromADecompositionAreOrderedWithTheMarksBeforeIt() {
        // U+0F73 decomposes to U+0F71 (class 129) U+0F72 (130), which go before U+030D (230).
        #expect(scalars(.nfc, "x\u{30D}\u{F73}") == [0x78, 0xF71, 0xF72, 0x30D])
        // U+1FFD is compatibility " " + U+0301 (230), which goes after U+033B and U+0331 (220).
        #expect(scalars(.nfkd, "\u{1FFD}\u{33B}\u{331}") == [0x20, 0x33B, 0x331, 0x301])
        #expect(scalars(.nfc, "\u{1FFD}\u{33B}\u{331}") == [0xB4, 0x33B, 0x331])
    }

    @Test func marksNewerThanUnicode9AreStartersToTheReference() {
        // U+1DF8 (class 228, Unicode 10) is not moved after U+0347 (220).
        #expect(scalars(.nfc, "a\u{1DF8}\u{347}") == [0x61, 0x1DF8, 0x347])
    }

    @Test func compositionHangulAndCompatibility() {
        #expect(scalars(.nfc, "e\u{301}\u{323}") == [0x1EB9, 0x301])
        #expect(scalars(.nfkd, "e\u{301}\u{323}") == [0x65, 0x323, 0x301])
        #expect(scalars(.nfc, "\u{1100}\u{1161}\u{11A8}") == [0xAC01])
        #expect(scalars(.nfkd, "\u{AC01}") == [0x1100, 0x1161, 0x11A8])
        #expect(scalars(.nfc, "\u{FB01}\u{2460}") == [0xFB01, 0x2460])
        #expect(scalars(.nfkd, "\u{FB01}\u{2460}") == [0x66, 0x69, 0x31])
    }
}
