import Testing

@testable import DistillText

@Suite("Pair integrity")
struct IntegrityTests {
    static let full =
        "The meeting was moved from Tuesday to Thursday because the main room was booked. Anna will bring the slides and the budget. Question: when is the meeting?"
    static let simple = "When is the meeting, now that it was moved?"

    static var clean: [TextPair] {
        Fixtures.pairs(50) + [TextPair(id: "hand", full: full, simplified: simple)]
    }

    func codes(_ pairs: [TextPair]) -> [String] { checkPairs(pairs).map(\.code) }

    @Test func cleanPairsHaveNoFindings() {
        #expect(checkPairs(Self.clean).isEmpty)
        #expect(checkPairsPerExample(Self.clean).isEmpty)
    }

    @Test func catalogue() {
        let codes = Finding.allCodes.map(\.code)
        #expect(
            codes == [
                "empty-full", "empty-simplified", "identical-simplification", "simplified-longer",
                "context-leak", "unrelated-simplification", "duplicate-id", "missing-id",
            ])
        #expect(Set(codes).count == codes.count)
        for c in Finding.allCodes { #expect(!c.title.isEmpty && !c.description.isEmpty) }
        #expect(
            Severity.error.rawValue == 1 && Severity.warning.rawValue == 2 && Severity.information.rawValue == 3
                && Severity.hint.rawValue == 4)
    }

    @Test func identicalSimplification() {
        var p = Self.clean
        p[3].simplified = "  " + p[3].full.uppercased() + "  "
        #expect(codes(p) == ["identical-simplification"])
        let f = checkPairs(p)[0]
        #expect(f.exampleIndices == [3] && f.exampleIds == ["ex-3"] && f.severity == .warning)
        #expect(f.message.contains("\"ex-3\""))
    }

    @Test func emptyTexts() {
        var p = Self.clean
        p[1].simplified = "  \n"
        p[2].full = ""
        p[4].full = "..."
        #expect(codes(p) == ["empty-full", "empty-simplified"])
        let g = checkPairs(p)
        #expect(g[0].exampleIndices == [2, 4] && g[0].severity == .error && g[0].data["count"] == 2)
        #expect(g[1].exampleIndices == [1])
        // Both empty: both codes, and no identical-simplification.
        let both = [TextPair(id: "x", full: "", simplified: "")]
        #expect(codes(both) == ["empty-full", "empty-simplified"])
    }

    @Test func simplifiedLonger() {
        let p = [
            TextPair(
                id: "a", full: "Paris is the capital of France.",
                simplified: "Paris is the capital city of the country called France, in Europe.")
        ]
        #expect(codes(p) == ["simplified-longer"])
        let f = checkPairsPerExample(p)[0]
        #expect(f.severity == .information)
        #expect(f.data["fullCharacters"] == 30 && f.data["simplifiedCharacters"] == 65)
        #expect(f.message == "The simplified input is longer than the full context (65 vs 30 characters, 2.17×).")
    }

    @Test func unrelatedSimplification() {
        var p = Self.clean
        p[10].simplified = p[20].simplified.replacingOccurrences("Question:", "Query")
        #expect(codes(p) == ["unrelated-simplification"])
        let f = checkPairs(p)[0]
        #expect(f.exampleIndices == [10] && f.data["maxTokenOverlap"]! < 0.1)
    }

    @Test func contextLeak() {
        // The simplified input keeps the whole context and only drops a trailing instruction.
        let leak = TextPair(id: "leak", full: Self.full + " Answer briefly.", simplified: Self.full)
        #expect(codes([leak]) == ["context-leak"])
        let f = checkPairsPerExample([leak])[0]
        #expect(f.data["coverage"]! >= 0.9 && f.data["ngramSize"] == 5)
        // Longer and leaking at once: both reported.
        let longer = TextPair(id: "l2", full: Self.full, simplified: Self.full + " Please answer in one short sentence.")
        #expect(codes([longer]) == ["simplified-longer", "context-leak"])
        // Keeping half of the context is not a leak.
        let half = TextPair(
            id: "h", full: Self.full, simplified: "Anna will bring the slides and the budget. Question: when is the meeting?")
        #expect(codes([half]).isEmpty)
    }

    @Test func ids() {
        var p = Self.clean
        p[5].id = "ex-7"
        p[9].id = "ex-7"
        p[11].id = nil
        p[12].id = "   "
        #expect(codes(p) == ["duplicate-id", "missing-id"])
        let g = checkPairs(p)
        #expect(g[0].exampleIndices == [5, 7, 9] && g[0].data["distinctIds"] == 1 && g[0].severity == .error)
        #expect(g[0].message == "3 examples share an id with another example: \"ex-7\".")
        #expect(g[1].exampleIndices == [11, 12] && g[1].exampleIds == [nil, nil])
        #expect(g[1].message == "2 examples have no id: indices 11, 12.")

        let per = checkPairsPerExample(p)
        #expect(per.map(\.exampleIndices.first!) == [5, 7, 9, 11, 12])
        #expect(per[1].exampleIndices == [7, 5, 9])
        #expect(per[1].message == "The id \"ex-7\" is also used by the examples at indices 5, 9.")
    }

    @Test func groupingListsEveryExample() {
        var p = Self.clean
        for i in [0, 4, 8, 15, 16, 23, 42] { p[i].simplified = p[i].full }
        p[4].id = nil
        let g = checkPairs(p)
        #expect(g.count == 2)
        #expect(g[0].code == "identical-simplification" && g[0].exampleIndices == [0, 4, 8, 15, 16, 23, 42])
        #expect(
            g[0].message
                == "7 examples have a simplified input identical to the full context, so nothing was simplified: \"ex-0\", the example at index 4, \"ex-8\", \"ex-15\", \"ex-16\" and 2 more."
        )
        let per = checkPairsPerExample(p)
        #expect(per.count == 8)
        #expect(per.filter { $0.exampleIndices == [4] }.map(\.code) == ["identical-simplification", "missing-id"])
    }

    @Test func stats() {
        let p = [
            TextPair(id: "a", full: "one two three four", simplified: "one two"),
            TextPair(id: "b", full: "alpha beta gamma delta epsilon zeta", simplified: "alpha beta gamma"),
            TextPair(id: "c", full: "", simplified: "x"),
        ]
        let s = simplificationStats(p)
        #expect(s.pairCount == 2 && s.skippedCount == 1)
        #expect(s.meanTokenRatio == 0.5 && s.medianTokenRatio == 0.5)
        #expect(s.meanTokenOverlap == 1)
        #expect(abs(s.meanCharacterRatio - (7.0 / 18.0 + 16.0 / 35.0) / 2) < 1e-12)
        let clean = simplificationStats(Fixtures.pairs(100))
        #expect(clean.meanCharacterRatio > 0.2 && clean.meanCharacterRatio < 0.35)
        #expect(clean.meanTokenOverlap == 1)
        #expect(simplificationStats([]).pairCount == 0)
    }
}
