import Foundation
import Testing

@testable import DistillText

#if canImport(FoundationXML)
    import FoundationXML
#endif

final class SVGCollector: NSObject, XMLParserDelegate {
    var elements: [String] = []
    var texts: [String] = []
    var attributes: [[String: String]] = []
    private var current = ""
    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName qName: String?,
        attributes attributeDict: [String: String] = [:]
    ) {
        elements.append(elementName)
        attributes.append(attributeDict)
        current = ""
    }
    func parser(_ parser: XMLParser, foundCharacters string: String) { current += string }
    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
        if elementName == "text" || elementName == "title" { texts.append(current) }
        current = ""
    }
}

func parseSVG(_ svg: String) -> SVGCollector? {
    let parser = XMLParser(data: Data(svg.utf8))
    let c = SVGCollector()
    parser.delegate = c
    return parser.parse() ? c : nil
}

@Suite("SVG charts")
struct SVGTests {
    static let labels = ["the", "cat", "<eos>", "dog & bird", "a-very-long-token-label-here"]
    static let values = [0.0412, -0.0113, 0.0268, .nan, -0.02]

    @Test func barChartIsWellFormedAndLabelled() throws {
        let svg = barChartSVG(
            title: "Contributions to KL(p‖q) <per output>", labels: Self.labels, values: Self.values, valueLabel: "p·log(p/q)")
        let doc = try #require(parseSVG(svg))
        #expect(doc.elements.first == "svg")
        let root = doc.attributes[0]
        #expect(root["xmlns"] == "http://www.w3.org/2000/svg")
        #expect(root["version"] == "1.1")
        #expect(root["width"] != nil && root["height"] != nil && root["viewBox"] == "0 0 \(root["width"]!) \(root["height"]!)")
        #expect(doc.texts.contains("Contributions to KL(p‖q) <per output>"))
        for l in ["the", "cat", "<eos>", "dog & bird", "a-very-long-token…", "p·log(p/q)", "positive", "negative", "0.0412", "-0.0113"] {
            #expect(doc.texts.contains(l), "missing text \(l)")
        }
        #expect(doc.texts.contains { $0.hasPrefix("1 value is not finite") })
        #expect(svg.contains("&lt;eos&gt;") && svg.contains("dog &amp; bird"))
        // Positive and negative bars are coloured differently; 4 finite values → 4 bars.
        let bars = doc.elements.enumerated().filter {
            $0.element == "rect" && doc.attributes[$0.offset]["title"] == nil && doc.attributes[$0.offset]["width"] != "10"
                && doc.attributes[$0.offset]["x"] != "0"
        }
        #expect(bars.count == 4)
        #expect(svg.contains("#d9534f") && svg.contains("#337ab7"))
        // Axis ticks span negatives and positives.
        #expect(doc.texts.contains("0.00") && doc.texts.contains("-0.02") && doc.texts.contains("0.04"))
        // Deterministic.
        #expect(
            svg
                == barChartSVG(
                    title: "Contributions to KL(p‖q) <per output>", labels: Self.labels, values: Self.values, valueLabel: "p·log(p/q)"))
    }

    @Test func barChartEdgeCases() throws {
        let empty = barChartSVG(title: "Empty", labels: [], values: [], valueLabel: "v")
        #expect(try #require(parseSVG(empty)).texts.contains("No values to plot"))
        let allNeg = barChartSVG(title: "Neg", labels: ["a"], values: [-3], valueLabel: "v")
        let d = try #require(parseSVG(allNeg))
        #expect(!d.texts.contains("positive"))
        let missing = barChartSVG(title: "Pad", labels: ["x"], values: [1, 2], valueLabel: "v")
        #expect(try #require(parseSVG(missing)).texts.contains("#2"))
        let many = barChartSVG(
            title: "Many", labels: (0..<200).map { "t\($0)" }, values: (0..<200).map { Double($0) - 100 }, valueLabel: "v")
        #expect(parseSVG(many) != nil)
        let control = barChartSVG(title: "bad\u{1}char", labels: ["x\u{0}"], values: [1], valueLabel: "v")
        #expect(parseSVG(control) != nil)
    }

    static let series: [(name: String, points: [(Double, Double)])] = [
        (name: "distillation loss", points: [(0.5, 1.8), (1, 0.95), (2, 0.55), (5, 0.43), (10, 0.6), (20, 1.05)]),
        (name: "student <CE>", points: [(20, 0.8), (1, 1.18), (2, .infinity), (5, 1.1), (0, 1.0), (.nan, 1)]),
    ]

    @Test func lineChartLogX() throws {
        let svg = lineChartSVG(title: "Loss vs temperature", xLabel: "temperature", yLabel: "loss", series: Self.series, logX: true)
        let doc = try #require(parseSVG(svg))
        let root = doc.attributes[0]
        #expect(root["xmlns"] == "http://www.w3.org/2000/svg" && root["viewBox"] != nil)
        for l in [
            "Loss vs temperature", "temperature (log scale)", "loss", "distillation loss", "student <CE>", "0.5", "1", "2", "5", "10", "20",
        ] {
            #expect(doc.texts.contains(l), "missing text \(l)")
        }
        #expect(
            doc.texts.contains("Skipped 2 points with an infinite or NaN value. Skipped 1 point with x ≤ 0, which a log scale cannot show.")
        )
        // Series 2 is broken at the infinite point: one polyline for series 1, two for series 2
        // ((1, 1.18) alone before the gap has no line; (5, 1.1)–(20, 0.8) after it).
        #expect(doc.elements.filter { $0 == "polyline" }.count == 2)
        #expect(doc.elements.filter { $0 == "circle" }.count == 6 + 3 + 2)
        #expect(svg == lineChartSVG(title: "Loss vs temperature", xLabel: "temperature", yLabel: "loss", series: Self.series, logX: true))
    }

    @Test func lineChartLinearAndDegenerate() throws {
        let lin = lineChartSVG(title: "Linear", xLabel: "T", yLabel: "L", series: [(name: "a", points: [(0, 0), (4, 2)])], logX: false)
        let doc = try #require(parseSVG(lin))
        #expect(doc.texts.contains("T") && doc.texts.contains("4") && !doc.texts.contains { $0.hasPrefix("Skipped") })
        let none = lineChartSVG(title: "None", xLabel: "T", yLabel: "L", series: [(name: "a", points: [(1, .nan)])], logX: true)
        #expect(try #require(parseSVG(none)).texts.contains("No finite points to plot"))
        let single = lineChartSVG(title: "One", xLabel: "T", yLabel: "L", series: [(name: "a", points: [(2, 1)])], logX: true)
        #expect(parseSVG(single) != nil)
        let narrow = lineChartSVG(
            title: "Narrow", xLabel: "T", yLabel: "L", series: [(name: "a", points: [(1.1, 1), (1.3, 2)])], logX: true)
        #expect(try #require(parseSVG(narrow)).texts.contains("1.2"))
    }

    @Test func escaping() {
        #expect(svgEscape("a<b>&\"c'\u{1}") == "a&lt;b&gt;&amp;&quot;c&apos;")
        #expect(svgNum(-0.001) == "0" && svgNum(1.5) == "1.5" && svgNum(2) == "2" && svgNum(-3.14159) == "-3.14")
    }

    /// A sweep over the whole accepted temperature range and beyond, with values
    /// at the ends of the Double range: the chart is drawn and parses.
    @Test func lineChartAtTheEndsOfTheDoubleRange() {
        let svg = lineChartSVG(
            title: "extremes", xLabel: "τ", yLabel: "τ²·KL",
            series: [("s", [(4.9e-324, 1e-300), (1e-4, 1.0), (1e300, 1.7e308), (1e308, -1.7e308)])], logX: true)
        #expect(parseSVG(svg) != nil)
        #expect(niceTicks(-1.7e308, 1.7e308).ticks.count >= 2)
        #expect(niceTicks(-.infinity, 1).ticks == [0, 1])
    }
}
