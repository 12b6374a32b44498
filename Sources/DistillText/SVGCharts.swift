// Standalone SVG 1.1 charts. Output is deterministic: the same input gives the
// same bytes (no randomness, no dictionaries iterated, locale-free number text).

import Foundation

/// Escapes text for SVG/XML character data and attribute values, and drops
/// characters XML 1.0 does not allow (C0 controls other than tab, LF, CR;
/// U+FFFE/U+FFFF).
public func svgEscape(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for s in text.unicodeScalars {
        switch s {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&apos;"
        case "\t", "\n", "\r": out.unicodeScalars.append(s)
        default:
            if s.value < 0x20 || s.value == 0xFFFE || s.value == 0xFFFF { continue }
            out.unicodeScalars.append(s)
        }
    }
    return out
}

/// Coordinate text: at most 2 decimals, no trailing zeros, no "-0".
func svgNum(_ v: Double) -> String {
    guard v.isFinite else { return "0" }
    let scaled = (v * 100).rounded(.toNearestOrAwayFromZero)
    if scaled == 0 { return "0" }
    let neg = scaled < 0
    let m = Int64(Swift.abs(scaled))
    let ip = m / 100, fp = m % 100
    var s = String(ip)
    if fp != 0 {
        s += "." + (fp < 10 ? "0" : "") + String(fp)
        while s.hasSuffix("0") { s.removeLast() }
    }
    return (neg ? "-" : "") + s
}

/// Shortens a label to at most `max` characters, ending in "…" when cut.
func truncateLabel(_ s: String, max: Int) -> String {
    s.count <= max ? s : String(s.prefix(max - 1)) + "…"
}

/// Ticks at multiples of a 1-2-5 step covering [lo, hi]; returns the ticks and the
/// decimals needed to print the step.
func niceTicks(_ lo: Double, _ hi: Double, target: Int = 6) -> (ticks: [Double], decimals: Int) {
    // Charts drop non-finite points before they get here; a range that still
    // overflows is drawn on a unit axis rather than looping on ∞.
    guard lo.isFinite, hi.isFinite else { return ([0, 1], 0) }
    var lo = lo, hi = hi
    if !(hi > lo) { lo -= 0.5; hi += 0.5 }
    let raw = hi / Double(max(1, target)) - lo / Double(max(1, target))
    let exp = ProseFormat.log10Floor(raw)
    let base = ProseFormat.pow10(exp)
    let f = raw / base
    let mult: Double = f <= 1 ? 1 : (f <= 2 ? 2 : (f <= 5 ? 5 : 10))
    let step = mult * base
    let stepExp = mult == 10 ? exp + 1 : exp
    let decimals = max(0, -stepExp)
    let first = (lo / step - 1e-9).rounded(.down)
    let last = (hi / step + 1e-9).rounded(.up)
    var ticks: [Double] = []
    var k = first
    while k <= last + 0.5 && ticks.count < 100 {
        let t = k * step
        ticks.append(Swift.abs(t) < step * 1e-9 ? 0 : t)
        k += 1
    }
    return (ticks, decimals)
}

private let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
private let positiveColor = "#d9534f"
private let negativeColor = "#337ab7"

private struct SVGWriter {
    var body = ""
    let width: Int, height: Int
    init(width: Int, height: Int, title: String, description: String) {
        self.width = width
        self.height = height
        body += "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
        body +=
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" font-family=\"DejaVu Sans, Arial, Helvetica, sans-serif\" font-size=\"12\">\n"
        body += "<title>\(svgEscape(title))</title>\n"
        body += "<desc>\(svgEscape(description))</desc>\n"
        body += "<rect x=\"0\" y=\"0\" width=\"\(width)\" height=\"\(height)\" fill=\"#ffffff\"/>\n"
        text(Double(width) / 2, 26, title, anchor: "middle", size: 16, weight: "bold")
    }
    mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, width w: Double = 1, dash: String? = nil) {
        body +=
            "<line x1=\"\(svgNum(x1))\" y1=\"\(svgNum(y1))\" x2=\"\(svgNum(x2))\" y2=\"\(svgNum(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(svgNum(w))\"\(dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>\n"
    }
    mutating func text(
        _ x: Double, _ y: Double, _ s: String, anchor: String = "start", size: Int = 12, weight: String? = nil, fill: String = "#222222",
        rotate: Double? = nil, baseline: String? = nil
    ) {
        var attrs = "x=\"\(svgNum(x))\" y=\"\(svgNum(y))\" text-anchor=\"\(anchor)\" font-size=\"\(size)\" fill=\"\(fill)\""
        if let weight { attrs += " font-weight=\"\(weight)\"" }
        if let baseline { attrs += " dominant-baseline=\"\(baseline)\"" }
        if let rotate { attrs += " transform=\"rotate(\(svgNum(rotate)) \(svgNum(x)) \(svgNum(y)))\"" }
        body += "<text \(attrs)>\(svgEscape(s))</text>\n"
    }
    mutating func raw(_ s: String) { body += s }
    func finish() -> String { body + "</svg>\n" }
}

/// A bar chart of one value per label, e.g. per-output contributions
/// p·log(p/q) to a KL divergence. Values may be negative: bars grow up from a
/// zero line for positive values (red) and down for negative ones (blue), with a
/// legend when both occur. Non-finite values are not drawn and a note says so.
/// Labels longer than 18 characters are shortened with "…" (the full label is
/// kept in each bar's tooltip), and are rotated when they would not fit under
/// their bar. Missing labels become "#1", "#2", … (1-based); extra labels are
/// ignored. Values are printed above/below bars when there are at most 30 bars.
/// The width grows with the number of bars (520–1,400 px); pass the top few
/// dozen outputs, not a whole vocabulary.
public func barChartSVG(title: String, labels: [String], values: [Double], valueLabel: String) -> String {
    let n = values.count
    let names = (0..<n).map { $0 < labels.count ? labels[$0] : "#\($0 + 1)" }
    let shown = names.map { truncateLabel($0, max: 18) }
    let width = min(1400, max(520, 110 + n * 40))
    let height = 440
    let left = 84.0, right = 24.0, top = 66.0
    let plotW = Double(width) - left - right
    let slot = n > 0 ? plotW / Double(n) : plotW
    let longest = shown.map(\.count).max() ?? 0
    let rotateLabels = Double(longest) * 7.0 > slot - 4
    let bottom = rotateLabels ? 64.0 + min(18.0, Double(longest)) * 4.9 : 74.0
    let plotH = Double(height) - top - bottom

    let finite = values.filter { $0.isFinite }
    let skipped = n - finite.count
    let vmin = min(0, finite.min() ?? 0), vmax = max(0, finite.max() ?? 0)
    let (ticks, decimals) = vmin == vmax ? niceTicks(0, 1) : niceTicks(vmin, vmax)
    let lo = ticks.first!, hi = ticks.last!
    func y(_ v: Double) -> Double { top + (hi - v) / (hi - lo) * plotH }

    let hasPos = finite.contains { $0 > 0 }, hasNeg = finite.contains { $0 < 0 }
    var desc = "Bar chart of \(valueLabel) for \(ProseFormat.count(n, "item"))."
    if skipped > 0 { desc += " \(ProseFormat.count(skipped, "value")) not finite and not drawn." }
    var w = SVGWriter(width: width, height: height, title: title, description: desc)

    // Grid, y ticks and labels.
    for t in ticks {
        let yy = y(t)
        w.line(left, yy, left + plotW, yy, stroke: "#e5e5e5")
        w.line(left - 5, yy, left, yy, stroke: "#444444")
        w.text(left - 8, yy + 4, ProseFormat.fixed(t, decimals: decimals), anchor: "end", size: 11)
    }
    w.text(20, top + plotH / 2, valueLabel, anchor: "middle", size: 12, rotate: -90)

    // Bars.
    let barW = max(1, slot * 0.7)
    let zeroY = y(0)
    for i in 0..<n {
        let cx = left + slot * (Double(i) + 0.5)
        let v = values[i]
        if v.isFinite {
            let top = min(y(v), zeroY), h = Swift.abs(y(v) - zeroY)
            let colour = v < 0 ? negativeColor : positiveColor
            w.raw(
                "<rect x=\"\(svgNum(cx - barW / 2))\" y=\"\(svgNum(top))\" width=\"\(svgNum(barW))\" height=\"\(svgNum(max(h, 0.5)))\" fill=\"\(colour)\"><title>\(svgEscape(names[i])): \(svgEscape(ProseFormat.number(v, significantDigits: 4)))</title></rect>\n"
            )
            if n <= 30 {
                let ty = v < 0 ? y(v) + 13 : y(v) - 4
                w.text(cx, ty, ProseFormat.number(v), anchor: "middle", size: 10, fill: "#333333")
            }
        } else {
            w.text(cx, zeroY - 4, "n/a", anchor: "middle", size: 10, fill: "#888888")
        }
        // x tick and label
        let axisY = top + plotH
        w.line(cx, axisY, cx, axisY + 5, stroke: "#444444")
        if rotateLabels {
            w.text(cx + 3, axisY + 14, shown[i], anchor: "end", size: 11, rotate: -45)
        } else {
            w.text(cx, axisY + 18, shown[i], anchor: "middle", size: 11)
        }
    }

    // Axes and zero line.
    w.line(left, top, left, top + plotH, stroke: "#444444")
    w.line(left, top + plotH, left + plotW, top + plotH, stroke: "#444444")
    w.line(left, zeroY, left + plotW, zeroY, stroke: "#000000", width: 1.5)

    // Legend.
    if hasPos && hasNeg {
        let lx = left + plotW - 150, ly = top - 16
        w.raw("<rect x=\"\(svgNum(lx))\" y=\"\(svgNum(ly - 9))\" width=\"10\" height=\"10\" fill=\"\(positiveColor)\"/>\n")
        w.text(lx + 14, ly, "positive", size: 11)
        w.raw("<rect x=\"\(svgNum(lx + 75))\" y=\"\(svgNum(ly - 9))\" width=\"10\" height=\"10\" fill=\"\(negativeColor)\"/>\n")
        w.text(lx + 89, ly, "negative", size: 11)
    }
    if n == 0 {
        w.text(left + plotW / 2, top + plotH / 2, "No values to plot", anchor: "middle", size: 13, fill: "#888888")
    }
    if skipped > 0 {
        w.text(
            left, Double(height) - 10,
            "\(ProseFormat.count(skipped, "value")) \(skipped == 1 ? "is" : "are") not finite (infinity or NaN) and \(skipped == 1 ? "is" : "are") not drawn.",
            size: 11, fill: "#a94442")
    }
    return w.finish()
}

/// A line chart of one or more series, e.g. loss against temperature, with a
/// legend on the right. Points of each series are drawn in ascending x order.
/// Points with a non-finite coordinate (±infinity, NaN), and points with x ≤ 0
/// when `logX` is true, are skipped; the line is broken where a skipped point
/// lies between two drawn ones, and a note under the chart counts them.
/// With `logX` the x axis is logarithmic with ticks at 1, 2 and 5 × 10^k
/// (only 10^k when that would give more than 9 ticks).
public func lineChartSVG(
    title: String, xLabel: String, yLabel: String,
    series: [(name: String, points: [(Double, Double)])], logX: Bool = false
) -> String {
    let width = 760, height = 460
    let left = 84.0, right = 190.0, top = 54.0, bottom = 84.0
    let plotW = Double(width) - left - right, plotH = Double(height) - top - bottom

    var nonFinite = 0, nonPositive = 0
    // Per series: points sorted by x, with nil marking a break.
    var prepared: [[(Double, Double)?]] = []
    var allX: [Double] = [], allY: [Double] = []
    for s in series {
        var pts: [(x: Double, y: Double, ok: Bool, order: Int)] = []
        for (k, p) in s.points.enumerated() {
            if !p.0.isFinite { nonFinite += 1; continue }
            if !p.1.isFinite { nonFinite += 1; pts.append((p.0, 0, false, k)); continue }
            if logX && p.0 <= 0 { nonPositive += 1; continue }
            pts.append((p.0, p.1, true, k))
        }
        pts.sort { $0.x != $1.x ? $0.x < $1.x : $0.order < $1.order }
        var out: [(Double, Double)?] = []
        for p in pts {
            if p.ok {
                out.append((p.x, p.y))
                allX.append(p.x)
                allY.append(p.y)
            } else if out.last != nil {
                out.append(nil)
            }
        }
        prepared.append(out)
    }

    // X scale.
    var xTicks: [Double] = []
    var xTickText: [String] = []
    let xToU: (Double) -> Double
    var xLo: Double, xHi: Double
    if logX {
        var lo = allX.min().map(log10) ?? 0, hi = allX.max().map(log10) ?? 1
        if hi - lo < 1e-12 { lo -= 0.5; hi += 0.5 }
        let pad = (hi - lo) * 0.04
        xLo = lo - pad
        xHi = hi + pad
        var cands: [Double] = []
        for mantissas in [[1.0, 2, 5], [1.0]] {
            cands = []
            var d = Int((xLo).rounded(.down))
            while Double(d) <= xHi {
                for m in mantissas {
                    let v = m * ProseFormat.pow10(d)
                    let lv = log10(v)
                    if lv >= xLo - 1e-9 && lv <= xHi + 1e-9 { cands.append(v) }
                }
                d += 1
            }
            if cands.count <= 9 { break }
        }
        if cands.count < 2 {
            // Less than one 1-2-5 step: linear ticks placed on the log scale.
            let (t, dec) = niceTicks(pow(10, xLo), pow(10, xHi), target: 4)
            cands = t.filter { $0 > 0 && log10($0) >= xLo - 1e-9 && log10($0) <= xHi + 1e-9 }
            xTickText = cands.map { ProseFormat.fixed($0, decimals: dec) }
        } else {
            xTickText = cands.map { ProseFormat.number($0) }
        }
        xTicks = cands
        xToU = { log10($0) }
    } else {
        let lo = allX.min() ?? 0, hi = allX.max() ?? 1
        let (t, dec) = niceTicks(lo, hi)
        xTicks = t
        xTickText = t.map { ProseFormat.fixed($0, decimals: dec) }
        xLo = t.first!
        xHi = t.last!
        xToU = { $0 }
    }
    let ylo = allY.min() ?? 0, yhi = allY.max() ?? 1
    let (yTicks, yDec) = niceTicks(ylo, yhi)
    let yLo = yTicks.first!, yHi = yTicks.last!
    func px(_ x: Double) -> Double { left + (xToU(x) - xLo) / (xHi - xLo) * plotW }
    func py(_ y: Double) -> Double { top + (yHi - y) / (yHi - yLo) * plotH }

    let desc =
        "Line chart of \(yLabel) against \(xLabel)\(logX ? " (logarithmic x axis)" : "") with \(ProseFormat.count(series.count, "series", plural: "series"))."
    var w = SVGWriter(width: width, height: height, title: title, description: desc)

    for (t, label) in zip(yTicks, yTicks.map { ProseFormat.fixed($0, decimals: yDec) }) {
        let yy = py(t)
        w.line(left, yy, left + plotW, yy, stroke: "#e5e5e5")
        w.line(left - 5, yy, left, yy, stroke: "#444444")
        w.text(left - 8, yy + 4, label, anchor: "end", size: 11)
    }
    for (t, label) in zip(xTicks, xTickText) {
        let xx = px(t)
        w.line(xx, top, xx, top + plotH, stroke: "#e5e5e5")
        w.line(xx, top + plotH, xx, top + plotH + 5, stroke: "#444444")
        w.text(xx, top + plotH + 18, label, anchor: "middle", size: 11)
    }
    w.line(left, top, left, top + plotH, stroke: "#444444")
    w.line(left, top + plotH, left + plotW, top + plotH, stroke: "#444444")
    w.text(left + plotW / 2, top + plotH + 40, xLabel + (logX ? " (log scale)" : ""), anchor: "middle", size: 12)
    w.text(20, top + plotH / 2, yLabel, anchor: "middle", size: 12, rotate: -90)

    w.raw("<g fill=\"none\" stroke-width=\"2\" stroke-linejoin=\"round\" stroke-linecap=\"round\">\n")
    for (i, pts) in prepared.enumerated() {
        let colour = palette[i % palette.count]
        var run: [(Double, Double)] = []
        func flush() {
            if run.count >= 2 {
                let d = run.map { "\(svgNum(px($0.0))),\(svgNum(py($0.1)))" }.joined(separator: " ")
                w.raw("<polyline points=\"\(d)\" stroke=\"\(colour)\"/>\n")
            }
            run.removeAll()
        }
        for p in pts {
            if let p { run.append(p) } else { flush() }
        }
        flush()
    }
    w.raw("</g>\n")
    for (i, pts) in prepared.enumerated() {
        let colour = palette[i % palette.count]
        let name = series[i].name
        for case let p? in pts {
            w.raw(
                "<circle cx=\"\(svgNum(px(p.0)))\" cy=\"\(svgNum(py(p.1)))\" r=\"3\" fill=\"\(colour)\"><title>\(svgEscape(name)): \(svgEscape(ProseFormat.number(p.0, significantDigits: 4))), \(svgEscape(ProseFormat.number(p.1, significantDigits: 4)))</title></circle>\n"
            )
        }
    }

    // Legend.
    let lx = left + plotW + 18
    for (i, s) in series.enumerated() {
        let ly = top + 10 + Double(i) * 20
        let colour = palette[i % palette.count]
        w.line(lx, ly, lx + 22, ly, stroke: colour, width: 2)
        w.raw("<circle cx=\"\(svgNum(lx + 11))\" cy=\"\(svgNum(ly))\" r=\"3\" fill=\"\(colour)\"/>\n")
        w.text(lx + 28, ly + 4, truncateLabel(s.name, max: 22), size: 11)
    }

    if allX.isEmpty {
        w.text(left + plotW / 2, top + plotH / 2, "No finite points to plot", anchor: "middle", size: 13, fill: "#888888")
    }
    var notes: [String] = []
    if nonFinite > 0 {
        notes.append("Skipped \(ProseFormat.count(nonFinite, "point")) with an infinite or NaN value.")
    }
    if nonPositive > 0 {
        notes.append("Skipped \(ProseFormat.count(nonPositive, "point")) with x ≤ 0, which a log scale cannot show.")
    }
    if !notes.isEmpty {
        w.text(left, Double(height) - 12, notes.joined(separator: " "), size: 11, fill: "#a94442")
    }
    return w.finish()
}
