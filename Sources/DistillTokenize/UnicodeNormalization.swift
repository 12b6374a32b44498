import Foundation

/// Unicode normalization (NFC, NFD, NFKC, NFKD) as the reference tokenizers compute it.
///
/// Two things keep Foundation's `precomposedStringWithCanonicalMapping` and friends from being
/// used on whole texts:
/// - The reference normalizes with the `unicode-normalization-alignments` crate, whose tables are
///   Unicode 9.0: a combining mark assigned later (U+1DF8, 10.0) is an unassigned starter there,
///   so marks are not reordered across it.
/// - The standard library's normalization misorders combining marks when a decomposition
///   interleaves with the marks around it: "x\u{30D}\u{F73}" stays x, U+030D (class 230), U+0F71
///   (129), U+0F72 (130), and the compatibility decomposition of "\u{1FFD}\u{33B}\u{331}" keeps
///   U+0301 (230) before U+033B (220).
///
/// So the algorithm of UAX #15 is written out here (full decomposition, canonical ordering by
/// combining class, canonical composition), and Foundation is asked only about single scalars:
/// each scalar's full decomposition, and whether a scalar survives NFC (composition exclusions).
/// The tables hold the scalars assigned by Unicode 9.0; normalization data of assigned scalars
/// never changes (Unicode's stability policy), so these are the reference's tables.
enum UnicodeNormalization {
    /// The Unicode version of the reference's normalization data.
    static let referenceUnicodeMajor = 9

    struct Tables: Sendable {
        var canonical: [UInt32: [Unicode.Scalar]] = [:]
        var compatibility: [UInt32: [Unicode.Scalar]] = [:]
        /// (first << 32 | second) → primary composite.
        var compositions: [UInt64: Unicode.Scalar] = [:]
    }

    /// Built once, on first use (tens of milliseconds).
    static let tables: Tables = {
        var tables = Tables()
        var scalar: UInt32 = 0xA0  // nothing below U+00A0 decomposes
        while scalar < 0x30000 {
            defer { scalar += 1 }
            // Ranges with no decompositions: unified ideographs, Hangul syllables (algorithmic),
            // surrogates, private use.
            if (0x3400...0x4DBF).contains(scalar) || (0x4E00...0x9FFF).contains(scalar) || (0xAC00...0xD7A3).contains(scalar)
                || (0xD800...0xF8FF).contains(scalar) || (0x20000...0x2A6DF).contains(scalar)
            {
                continue
            }
            guard let s = Unicode.Scalar(scalar), let age = s.properties.age, age.major <= referenceUnicodeMajor else { continue }
            let text = String(Character(s))
            let canonical = Array(text.decomposedStringWithCanonicalMapping.unicodeScalars)
            if canonical != [s] { tables.canonical[scalar] = canonical }
            let compatibility = Array(text.decomposedStringWithCompatibilityMapping.unicodeScalars)
            if compatibility != [s] { tables.compatibility[scalar] = compatibility }
            // A primary composite: decomposes canonically into more than one scalar and is its own NFC.
            if canonical.count > 1, Array(text.precomposedStringWithCanonicalMapping.unicodeScalars) == [s] {
                let head = Array(
                    String(String.UnicodeScalarView(canonical.dropLast())).precomposedStringWithCanonicalMapping.unicodeScalars)
                if head.count == 1 {
                    tables.compositions[pairKey(head[0], canonical.last!)] = s
                }
            }
        }
        return tables
    }()

    @inline(__always)
    private static func pairKey(_ first: Unicode.Scalar, _ second: Unicode.Scalar) -> UInt64 {
        UInt64(first.value) << 32 | UInt64(second.value)
    }

    /// The canonical combining class, 0 for scalars the reference's tables do not know.
    @inline(__always)
    static func combiningClass(_ scalar: Unicode.Scalar) -> UInt8 {
        if scalar.value < 0x300 { return 0 }
        let properties = scalar.properties
        let ccc = properties.canonicalCombiningClass.rawValue
        guard ccc != 0, let age = properties.age, age.major <= referenceUnicodeMajor else { return 0 }
        return ccc
    }

    private static let hangulBase: UInt32 = 0xAC00
    private static let leadBase: UInt32 = 0x1100
    private static let vowelBase: UInt32 = 0x1161
    private static let trailBase: UInt32 = 0x11A7
    private static let vowelCount: UInt32 = 21
    private static let trailCount: UInt32 = 28
    private static let syllableCount: UInt32 = 11172

    /// Full decomposition followed by canonical ordering.
    static func decompose(_ text: [Unicode.Scalar], compatibility: Bool) -> [Unicode.Scalar] {
        let table = compatibility ? tables.compatibility : tables.canonical
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count + text.count / 4)
        for scalar in text {
            let v = scalar.value
            if v < 0xA0 {
                out.append(scalar)
            } else if v >= hangulBase && v < hangulBase + syllableCount {
                let index = v - hangulBase
                out.append(Unicode.Scalar(leadBase + index / (vowelCount * trailCount))!)
                out.append(Unicode.Scalar(vowelBase + (index % (vowelCount * trailCount)) / trailCount)!)
                if index % trailCount != 0 { out.append(Unicode.Scalar(trailBase + index % trailCount)!) }
            } else if let decomposition = table[v] {
                out.append(contentsOf: decomposition)
            } else {
                out.append(scalar)
            }
        }
        // Canonical ordering: each run of non-starters sorted by class, stably (insertion sort:
        // runs are short).
        var i = 0
        while i < out.count {
            guard combiningClass(out[i]) != 0 else {
                i += 1
                continue
            }
            var end = i
            while end < out.count && combiningClass(out[end]) != 0 { end += 1 }
            if end - i > 1 {
                for j in (i + 1)..<end {
                    let item = out[j]
                    let ccc = combiningClass(item)
                    var k = j
                    while k > i && combiningClass(out[k - 1]) > ccc {
                        out[k] = out[k - 1]
                        k -= 1
                    }
                    out[k] = item
                }
            }
            i = end
        }
        return out
    }

    /// Canonical composition of a decomposed, canonically ordered text.
    static func compose(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        let compositions = tables.compositions
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var starter = -1
        var lastClass: UInt8 = 0
        for scalar in text {
            let ccc = combiningClass(scalar)
            if starter >= 0 && (out.count - 1 == starter || lastClass < ccc) {
                let first = out[starter]
                if let composite = hangulComposite(first, scalar) ?? compositions[pairKey(first, scalar)] {
                    out[starter] = composite
                    continue
                }
            }
            out.append(scalar)
            if ccc == 0 {
                starter = out.count - 1
                lastClass = 0
            } else {
                lastClass = ccc
            }
        }
        return out
    }

    private static func hangulComposite(_ first: Unicode.Scalar, _ second: Unicode.Scalar) -> Unicode.Scalar? {
        let a = first.value
        let b = second.value
        if a >= leadBase && a < leadBase + 19 && b >= vowelBase && b < vowelBase + vowelCount {
            return Unicode.Scalar(hangulBase + ((a - leadBase) * vowelCount + (b - vowelBase)) * trailCount)
        }
        if a >= hangulBase && a < hangulBase + syllableCount && (a - hangulBase) % trailCount == 0 && b > trailBase
            && b < trailBase + trailCount
        {
            return Unicode.Scalar(a + (b - trailBase))
        }
        return nil
    }
}
