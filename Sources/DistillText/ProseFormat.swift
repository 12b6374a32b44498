/// Number formatting for explanations written in plain English. Output is
/// locale independent and deterministic: "," groups thousands, "." is the
/// decimal point, "-" is the minus sign.
public enum ProseFormat {

    /// An integer with thousands separators: 1000 → "1,000", -1234567 → "-1,234,567".
    public static func count(_ n: Int) -> String {
        let digits = String(n.magnitude)
        return (n < 0 ? "-" : "") + groupThousands(digits)
    }

    /// "1 input", "1,000 inputs". `plural` defaults to `singular + "s"`.
    public static func count(_ n: Int, _ singular: String, plural: String? = nil) -> String {
        "\(count(n)) \(n == 1 ? singular : (plural ?? singular + "s"))"
    }

    /// A number for prose, keeping `significantDigits` significant digits (default 3)
    /// and dropping trailing zeros:
    /// - 0.02681 → "0.0268", 0.5 → "0.5", 12.345 → "12.3", 2.0 → "2"
    /// - |x| ≥ 1,000 is rounded to a whole number with separators: 12345.6 → "12,346"
    /// - 0 < |x| < 0.0001 uses scientific notation: 0.00002681 → "2.68e-5"
    /// - non-finite values: "infinity", "-infinity", "NaN"
    public static func number(_ x: Double, significantDigits: Int = 3) -> String {
        if x.isNaN { return "NaN" }
        if x.isInfinite { return x > 0 ? "infinity" : "-infinity" }
        if x == 0 { return "0" }
        let sig = max(1, min(15, significantDigits))
        let mag = Swift.abs(x)
        let sign = x < 0 ? "-" : ""
        if mag >= 1000 {
            if mag >= 9.0e15 { return sign + scientific(mag, sig) }
            return sign + count(Int(mag.rounded()))
        }
        if mag < 1e-4 { return sign + scientific(mag, sig) }
        let exponent = Int(log10Floor(mag))
        let decimals = max(0, sig - 1 - exponent)
        return sign + fixed(mag, decimals: decimals, trimZeros: true)
    }

    /// A number with exactly `decimals` digits after the point (rounded half away
    /// from zero), with thousands separators: fixed(1234.5, decimals: 2) → "1,234.50".
    public static func fixed(_ x: Double, decimals: Int) -> String {
        if !x.isFinite { return number(x) }
        let body = fixed(Swift.abs(x), decimals: decimals, trimZeros: false)
        let isZero = body.allSatisfy { $0 == "0" || $0 == "." || $0 == "," }
        return (x < 0 && !isZero ? "-" : "") + body
    }

    /// A fraction as a percentage: 0.918 → "91.8%", 0.5 → "50%", 1 → "100%",
    /// 0.0004 → "<0.1%", 0.9996 → ">99.9%", 0 → "0%". `decimals` (default 1) is
    /// the maximum number of decimals; trailing zeros are dropped.
    public static func percent(_ fraction: Double, decimals: Int = 1) -> String {
        if !fraction.isFinite { return number(fraction) }
        let d = max(0, min(6, decimals))
        let p = fraction * 100
        let step = pow10(-d)
        if p > 0 && p < step { return "<" + fixed(step, decimals: d, trimZeros: true) + "%" }
        if p < 100 && p > 100 - step && fraction <= 1 { return ">" + fixed(100 - step, decimals: d, trimZeros: true) + "%" }
        let sign = p < 0 ? "-" : ""
        return sign + fixed(Swift.abs(p), decimals: d, trimZeros: true) + "%"
    }

    /// "918 of 1,000".
    public static func ratio(_ part: Int, of whole: Int) -> String {
        "\(count(part)) of \(count(whole))"
    }

    // MARK: - internals

    static func groupThousands(_ digits: String) -> String {
        let chars = Array(digits)
        var out = ""
        for (i, c) in chars.enumerated() {
            if i > 0 && (chars.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return out
    }

    static func pow10(_ e: Int) -> Double {
        var r = 1.0
        if e >= 0 { for _ in 0..<e { r *= 10 } } else { for _ in 0..<(-e) { r /= 10 } }
        return r
    }

    /// floor(log10(x)) for finite x > 0 (subnormals included), computed without
    /// Foundation; 0 for anything else, so no caller can loop on ∞ or NaN.
    static func log10Floor(_ x: Double) -> Int { decimalSplit(x).exponent }

    /// x = mantissa · 10^exponent with 1 ≤ mantissa < 10, for finite x > 0; (x, 0)
    /// otherwise. The mantissa is scaled by repeated ×10 or ÷10 rather than
    /// divided by 10^exponent, which would be 0 or ∞ at the ends of the range.
    static func decimalSplit(_ x: Double) -> (mantissa: Double, exponent: Int) {
        guard x.isFinite, x > 0 else { return (x, 0) }
        var e = 0
        var v = x
        while v >= 10 { v /= 10; e += 1 }
        while v < 1 { v *= 10; e -= 1 }
        return (v, e)
    }

    /// Non-negative `mag` with `decimals` decimals, thousands separators in the integer part.
    static func fixed(_ mag: Double, decimals: Int, trimZeros: Bool) -> String {
        let d = max(0, min(15, decimals))
        let scale = pow10(d)
        let scaledD = (mag * scale).rounded(.toNearestOrAwayFromZero)
        guard scaledD < 9.0e18 else { return scientific(mag, 6) }
        let scaled = UInt64(scaledD)
        let factor = UInt64(scale)
        let intPart = scaled / factor
        var frac = d > 0 ? String(scaled % factor) : ""
        if d > 0 { frac = String(repeating: "0", count: d - frac.count) + frac }
        if trimZeros { while frac.hasSuffix("0") { frac.removeLast() } }
        let head = groupThousands(String(intPart))
        return frac.isEmpty ? head : head + "." + frac
    }

    static func scientific(_ mag: Double, _ sig: Int) -> String {
        guard mag.isFinite, mag > 0 else { return number(mag) }
        var (mantissa, e) = decimalSplit(mag)
        let r = pow10(sig - 1)
        mantissa = (mantissa * r).rounded(.toNearestOrAwayFromZero) / r
        if mantissa >= 10 { mantissa /= 10; e += 1 }
        return fixed(mantissa, decimals: sig - 1, trimZeros: true) + "e" + String(e)
    }
}
