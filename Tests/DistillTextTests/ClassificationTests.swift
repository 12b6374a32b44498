import DistillTestSupport
import Testing

@testable import DistillText

@Suite("Input classification")
struct ClassificationTests {
    static let pairs = Fixtures.pairs(1_000)

    @Test func allSimplifiedIsCorrect() {
        let pairs = Self.pairs
        let c = classifyInputs(pairs: pairs, inputs: pairs.map(\.simplified))
        #expect(c.counts.total == 1_000)
        #expect(c.counts.simplified == 1_000)
        #expect(c.counts.full == 0 && c.counts.unknown == 0 && c.counts.ambiguous == 0)
        #expect(c.counts.exact == 1_000 && c.counts.near == 0)
        #expect(c.simplifiedRate == 1)
        #expect(c.regime == .allSimplified)
        #expect(c.verdict == "All 1,000 training inputs are simplified inputs: the student is trained on D', as intended.")
        #expect(c.notes.isEmpty)
        #expect(
            c.matches.enumerated().allSatisfy { k, m in
                m.kind == .simplified(k) && m.pairIndex == k && m.method == .exact && m.similarity == 1
            })
    }

    @Test func allFullIsWrongDataset() {
        let pairs = Self.pairs
        let c = classifyInputs(pairs: pairs, inputs: pairs.map(\.full))
        #expect(c.counts.full == 1_000 && c.counts.simplified == 0)
        #expect(c.regime == .mostlyFull)
        #expect(c.verdict == "All 1,000 training inputs are full contexts: the student is being trained on D, not D'.")
        #expect(
            c.consequence
                == "It learns from context it will not have when deployed; expect training loss to look better than deployed quality.")
        #expect(c.matches[17].kind == .full(17))
    }

    @Test func mostlyFullMatchesSpecWording() {
        let pairs = Self.pairs
        let inputs = pairs.enumerated().map { i, p in i < 918 ? p.full : p.simplified }
        let c = classifyInputs(pairs: pairs, inputs: inputs)
        #expect(c.counts.full == 918 && c.counts.simplified == 82)
        #expect(c.fullRate == 0.918)
        #expect(c.regime == .mostlyFull)
        #expect(c.verdict == "918 of 1,000 training inputs are full contexts: the student is being trained on D, not D'.")
    }

    @Test func halfAndHalfIsMixed() {
        let pairs = Self.pairs
        let inputs = pairs.enumerated().map { i, p in i % 2 == 0 ? p.full : p.simplified }
        let c = classifyInputs(pairs: pairs, inputs: inputs)
        #expect(c.counts.full == 500 && c.counts.simplified == 500)
        #expect(c.regime == .mixed)
        #expect(
            c.verdict == "500 of 1,000 training inputs are full contexts and 500 are simplified inputs: the training set mixes D and D'.")
        #expect(c.consequence.contains("concatenated"))
        #expect(c.consequence.contains("wrong split"))
    }

    @Test func concatenatedDatasetsAreMixed() {
        let pairs = Array(Self.pairs.prefix(300))
        let c = classifyInputs(pairs: pairs, inputs: pairs.map(\.full) + pairs.map(\.simplified))
        #expect(c.counts.full == 300 && c.counts.simplified == 300)
        #expect(c.regime == .mixed)
        #expect(c.matches[300].kind == .simplified(0))
    }

    @Test func fewFullIsMostlySimplified() {
        let pairs = Self.pairs
        let inputs = pairs.enumerated().map { i, p in i < 30 ? p.full : p.simplified }
        let c = classifyInputs(pairs: pairs, inputs: inputs)
        #expect(c.counts.full == 30 && c.counts.simplified == 970)
        #expect(c.regime == .mostlySimplified)
        #expect(
            c.verdict
                == "30 of 1,000 training inputs are full contexts while 970 are simplified inputs: a few examples of D leaked into the student's training set D'."
        )
    }

    @Test func foreignInputsAreMostlyUnknown() {
        let pairs = Self.pairs
        let foreign = Fixtures.pairs(800, seed: 7).map(\.simplified)
        let inputs = foreign + pairs.prefix(150).map(\.full) + pairs.prefix(50).map(\.simplified)
        let c = classifyInputs(pairs: pairs, inputs: inputs)
        #expect(c.counts.unknown == 800 && c.counts.full == 150 && c.counts.simplified == 50)
        #expect(c.unknownRate == 0.8)
        #expect(c.regime == .mostlyUnknown)
        #expect(
            c.verdict
                == "800 of 1,000 training inputs match neither the full contexts nor the simplified inputs of this dataset: the inputs do not come from this paired dataset (of the 200 that match, 150 are full contexts and 50 are simplified)."
        )
        #expect(c.matches[0].kind == .unknown && c.matches[0].method == nil && c.matches[0].pairIndex == nil)
    }

    @Test func someUnknownGetsANote() {
        let pairs = Array(Self.pairs.prefix(100))
        let inputs = pairs.map(\.simplified) + ["something else entirely, unrelated to anything"]
        let c = classifyInputs(pairs: pairs, inputs: inputs)
        #expect(c.regime == .allSimplified)
        #expect(
            c.verdict
                == "100 of 101 training inputs are simplified inputs and none is a full context: the student is trained on D', as intended."
        )
        #expect(c.notes == ["1 of 101 training inputs match neither dataset."])
    }

    @Test func cosmeticChangesMatchExactly() {
        let pairs = Array(Self.pairs.prefix(200))
        let inputs = pairs.enumerated().map { i, p in Fixtures.cosmetic(i < 60 ? p.full : p.simplified) }
        let c = classifyInputs(pairs: pairs, inputs: inputs)
        #expect(c.counts.full == 60 && c.counts.simplified == 140)
        #expect(c.counts.exact == 200 && c.counts.near == 0)
        #expect(c.matches[59].kind == .full(59) && c.matches[60].kind == .simplified(60))
    }

    @Test func editedNearDuplicatesMatchNear() {
        // Longer simplified inputs (~40 words) so that two changed words keep the
        // character 5-gram Jaccard similarity above 0.8.
        let pairs = Fixtures.pairs(1_000, seed: 11, contextWords: 60, questionWords: 40)
        var rng = Rng(99)
        // 0..<250: full with 3 words changed; 250..<700: simplified with 2 words changed;
        // 700..<800: simplified with an inner comma and a doubled space (near or exact);
        // 800..<1000: unchanged simplified.
        var inputs: [String] = []
        for (i, p) in pairs.enumerated() {
            switch i {
            case ..<250: inputs.append(Fixtures.changeWords(p.full, count: 3, rng: &rng))
            case ..<700: inputs.append(Fixtures.changeWords(p.simplified, count: 2, rng: &rng))
            case ..<800:
                var w = p.simplified.split(separator: " ").map(String.init)
                w[3] += ","
                inputs.append(w.joined(separator: "  "))
            default: inputs.append(p.simplified)
            }
        }
        // Precondition on the generated data: every edit stays above the threshold.
        let tooFar = (0..<800).filter { i in
            let j = shingleJaccard(inputs[i], i < 250 ? pairs[i].full : pairs[i].simplified)
            return !(j >= 0.8 && j < 1)
        }
        #expect(tooFar.isEmpty)
        let c = classifyInputs(pairs: pairs, inputs: inputs)
        #expect(c.counts.full == 250)
        #expect(c.counts.simplified == 750)
        #expect(c.counts.unknown == 0 && c.counts.ambiguous == 0)
        #expect(c.counts.near == 800)
        #expect(c.counts.exact == 200)
        let wrong = c.matches.enumerated().filter { i, m in
            m.pairIndex != i || (i < 800 && !(m.method == .near && m.similarity >= 0.8 && m.similarity < 1))
        }
        #expect(wrong.isEmpty)
        #expect(c.regime == .mixed)
        #expect(
            c.notes == [
                "800 inputs were matched as edited near-duplicates (character 5-gram Jaccard similarity ≥ 0.8) rather than exactly."
            ])
    }

    @Test func heavilyEditedTextIsUnknown() {
        let pairs = Array(Self.pairs.prefix(50))
        var rng = Rng(5)
        let inputs = pairs.map { Fixtures.changeWords($0.simplified, count: 8, rng: &rng) }
        let c = classifyInputs(pairs: pairs, inputs: inputs)
        #expect(c.counts.unknown == 50)
        // A lower threshold recovers them.
        let loose = classifyInputs(pairs: pairs, inputs: inputs, nearThreshold: 0.25)
        #expect(loose.counts.simplified == 50)
    }

    @Test func identicalPairIsAmbiguous() {
        var pairs = Array(Self.pairs.prefix(10))
        pairs[3].simplified = pairs[3].full
        let c = classifyInputs(pairs: pairs, inputs: [pairs[3].full, pairs[4].simplified])
        #expect(c.matches[0].kind == .ambiguous(fullPairIndex: 3, simplifiedPairIndex: 3))
        #expect(c.matches[0].method == .exact && c.matches[0].pairIndex == nil)
        #expect(c.counts.ambiguous == 1 && c.counts.simplified == 1)
        #expect(c.regime == .allSimplified)
        #expect(c.notes.contains("1 input matches a full context and a simplified input equally well and was not counted as either."))

        let only = classifyInputs(pairs: pairs, inputs: [pairs[3].full])
        #expect(only.regime == .inconclusive)
    }

    @Test func nearTieIsAmbiguousAndHigherSimilarityWins() {
        var pairs = Array(Self.pairs.prefix(10))
        pairs[7].simplified = pairs[2].full  // same text on both sides, different pairs
        var rng = Rng(1)
        let edited = Fixtures.changeWords(pairs[2].full, count: 2, rng: &rng)
        let c = classifyInputs(pairs: pairs, inputs: [edited])
        #expect(c.matches[0].kind == .ambiguous(fullPairIndex: 2, simplifiedPairIndex: 7))
        #expect(c.matches[0].method == .near)

        // Full text A and simplified text B, input closer to B.
        var p2 = Fixtures.pairs(10, seed: 11, contextWords: 60, questionWords: 40)
        let base = p2[5].simplified
        p2[6].full = Fixtures.changeWords(base, count: 1, rng: &rng)  // a full context close to pair 5's x'
        var words = base.split(separator: " ").map(String.init)
        words[5] += "s"
        let probe = words.joined(separator: " ")  // closer still to pair 5's x'
        #expect(probe != base)
        let c2 = classifyInputs(pairs: p2, inputs: [probe])
        let simToSimp = shingleJaccard(probe, p2[5].simplified)
        let simToFull = shingleJaccard(probe, p2[6].full)
        #expect(simToSimp > simToFull && simToFull >= 0.8)
        #expect(c2.matches[0].kind == .simplified(5))
        #expect(abs(c2.matches[0].similarity - simToSimp) < 1e-12)
    }

    @Test func emptyAndDegenerateInputs() {
        let pairs = Array(Self.pairs.prefix(5))
        let c = classifyInputs(pairs: pairs, inputs: ["", "   ", "?!"])
        #expect(c.counts.unknown == 3)
        #expect(c.regime == .mostlyUnknown)
        let none = classifyInputs(pairs: pairs, inputs: [])
        #expect(none.regime == .noInputs && none.counts.total == 0 && none.fullRate == 0)
        let noPairs = classifyInputs(pairs: [], inputs: ["hello"])
        #expect(noPairs.counts.unknown == 1)
        // Duplicate texts across pairs report the lowest pair index.
        let dup = [
            TextPair(id: "a", full: "same full text here", simplified: "s1"),
            TextPair(id: "b", full: "same full text here", simplified: "s2"),
        ]
        #expect(classifyInputs(pairs: dup, inputs: ["Same full text here."]).matches[0].kind == .full(0))
    }

    /// The prefix-filtered index must find exactly what brute force finds.
    @Test(arguments: [0.5, 0.8, 0.9])
    func indexAgreesWithBruteForce(threshold: Double) {
        var rng = Rng(2024)
        let base = Fixtures.pairs(60, seed: 3, contextWords: 12, questionWords: 6)
        var docsText = base.map(\.full) + base.map(\.simplified)
        for _ in 0..<40 { docsText.append(Fixtures.changeWords(docsText[rng.int(docsText.count)], count: 1 + rng.int(3), rng: &rng)) }
        let docs = docsText.map { shingleSet(normalizedScalars($0, options: .matching)) }
        let index = NearDuplicateIndex(documents: docs, threshold: threshold)
        var scratch = NearDuplicateIndex.Scratch(documentCount: docs.count)
        for q in 0..<150 {
            let src = docsText[rng.int(docsText.count)]
            let probeText = q % 3 == 0 ? src : Fixtures.changeWords(src, count: 1 + rng.int(4), rng: &rng)
            let probe = shingleSet(normalizedScalars(probeText, options: .matching))
            let got = index.query(probe, scratch: &scratch).map(\.document)
            var want: [Int] = []
            for (d, doc) in docs.enumerated() {
                let inter = sortedIntersectionCount(probe, doc)
                let j = Double(inter) / Double(probe.count + doc.count - inter)
                if j >= threshold - 1e-12 { want.append(d) }
            }
            #expect(got == want)
        }
    }

    @Test func shingleJaccardBasics() {
        #expect(shingleJaccard("Hello world", "  hello   WORLD!") == 1)
        #expect(shingleJaccard("", "") == 1)
        #expect(shingleJaccard("abc", "") == 0)
        #expect(shingleJaccard("abcdef", "bcdefg") == 1.0 / 3.0)
        #expect(shingleJaccard("ab", "ab") == 1 && shingleJaccard("ab", "ac") == 0)
    }
}
