import Testing

@testable import DistillText

@Suite("Normalisation and prose formatting")
struct NormalizationTests {
    @Test func normalisationRule() {
        #expect(normalizeText("  Hello,\t\tWORLD!\n") == "hello, world")
        #expect(normalizeText("  Hello,\t\tWORLD!\n", options: .keepPunctuation) == "hello, world!")
        #expect(normalizeText("«Bonjour»") == "bonjour")
        #expect(normalizeText("a\u{00A0}\u{3000}b") == "a b")
        #expect(normalizeText("$5 + 3") == "$5 + 3")  // symbols are kept
        #expect(normalizeText("... (\"quoted\") ...") == "quoted")
        #expect(normalizeText("?!") == "")
        // NFC: decomposed and precomposed forms give the same scalars.
        let decomposed = normalizeText("Cafe\u{301}")
        #expect(Array(decomposed.unicodeScalars) == Array("café".unicodeScalars))
        #expect(decomposed.unicodeScalars.count == 4)
        // Idempotent.
        for s in ["  A  b ", "x.", "Ünïcödé\u{301} text!", ""] {
            #expect(normalizeText(normalizeText(s)) == normalizeText(s))
        }
    }

    @Test func tokens() {
        #expect(wordTokens("Hello, World! It's  (really) fine.") == ["hello", "world", "it's", "really", "fine"])
        #expect(wordTokens(" -- ") == [])
    }

    @Test func proseNumbers() {
        let F = ProseFormat.self
        #expect(F.number(0.02681) == "0.0268")
        #expect(F.number(0.5) == "0.5")
        #expect(F.number(2.0) == "2")
        #expect(F.number(12.345) == "12.3")
        #expect(F.number(-0.1234) == "-0.123")
        #expect(F.number(999.96) == "1,000")
        #expect(F.number(12345.6) == "12,346")
        #expect(F.number(0.00002681) == "2.68e-5")
        #expect(F.number(0.099996) == "0.1")
        #expect(F.number(0) == "0")
        #expect(F.number(.infinity) == "infinity" && F.number(-.infinity) == "-infinity" && F.number(.nan) == "NaN")
        #expect(F.number(0.02681, significantDigits: 2) == "0.027")
        #expect(F.count(1_000) == "1,000" && F.count(-1_234_567) == "-1,234,567" && F.count(12) == "12")
        #expect(F.count(1, "input") == "1 input" && F.count(1_000, "input") == "1,000 inputs")
        #expect(F.count(2, "series", plural: "series") == "2 series")
        #expect(F.fixed(1234.5, decimals: 2) == "1,234.50")
        #expect(F.fixed(-0.001, decimals: 2) == "0.00")
        #expect(F.fixed(-1.5, decimals: 0) == "-2")
        #expect(F.percent(0.918) == "91.8%")
        #expect(F.percent(0.5) == "50%")
        #expect(F.percent(1) == "100%")
        #expect(F.percent(0) == "0%")
        #expect(F.percent(0.0004) == "<0.1%")
        #expect(F.percent(0.9996) == ">99.9%")
        #expect(F.percent(0.12346, decimals: 2) == "12.35%")
        #expect(F.ratio(918, of: 1_000) == "918 of 1,000")
    }

    /// The ends of the Double range: these once looped for ever (10^-324 is 0, so
    /// the mantissa became ∞, and floor(log10(∞)) never ended).
    @Test func proseNumbersAtTheEndsOfTheRange() {
        let F = ProseFormat.self
        #expect(F.number(4.9e-324) == "4.94e-324")
        #expect(F.number(-2.2250738585072014e-308) == "-2.23e-308")
        #expect(F.number(1e300) == "1e300")
        #expect(F.number(.greatestFiniteMagnitude) == "1.8e308")
        #expect(F.fixed(1e300, decimals: 2) == "1e300")
        #expect(F.scientific(.infinity, 3) == "infinity")
        #expect(F.log10Floor(.infinity) == 0 && F.log10Floor(.nan) == 0 && F.log10Floor(0) == 0)
        #expect(F.log10Floor(4.9e-324) == -324 && F.log10Floor(1.7976931348623157e308) == 308)
    }
}
