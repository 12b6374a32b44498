/// Severity of a ``Finding``, numbered like LSP `DiagnosticSeverity`.
public enum Severity: Int, Sendable, Equatable, Hashable, Comparable {
    case error = 1
    case warning = 2
    case information = 3
    case hint = 4

    /// "error", "warning", "information" or "hint".
    public var name: String {
        switch self {
        case .error: return "error"
        case .warning: return "warning"
        case .information: return "information"
        case .hint: return "hint"
        }
    }

    public static func < (a: Severity, b: Severity) -> Bool { a.rawValue < b.rawValue }
}

/// A catalogue entry describing one finding code.
public struct FindingCode: Sendable, Equatable, Hashable {
    public var code: String
    public var title: String
    public var description: String
    public var severity: Severity

    public init(code: String, title: String, description: String, severity: Severity) {
        self.code = code
        self.title = title
        self.description = description
        self.severity = severity
    }
}

/// A problem found in a paired dataset by ``checkPairs(_:)`` or ``checkPairsPerExample(_:)``.
public struct Finding: Sendable, Equatable {
    /// Stable identifier, one of ``allCodes``.
    public var code: String
    public var severity: Severity
    public var message: String
    /// Indices (0-based positions in the `pairs` array) of the examples concerned,
    /// ascending. In a per-example finding the first one is the example the
    /// finding is attached to; for `duplicate-id` the others that share its id follow.
    public var exampleIndices: [Int]
    /// The ids of those examples (same order), `nil` where the id is missing.
    public var exampleIds: [String?]
    /// Measured values, keys documented per code in ``allCodes``.
    public var data: [String: Double]

    public init(code: String, severity: Severity, message: String, exampleIndices: [Int], exampleIds: [String?], data: [String: Double]) {
        self.code = code
        self.severity = severity
        self.message = message
        self.exampleIndices = exampleIndices
        self.exampleIds = exampleIds
        self.data = data
    }

    /// `empty-full`: the full context x is empty after normalisation. Error.
    public static let emptyFull = "empty-full"
    /// `empty-simplified`: the simplified input x' is empty after normalisation. Error.
    public static let emptySimplified = "empty-simplified"
    /// `identical-simplification`: x' equals x after normalisation: nothing was simplified. Warning.
    public static let identicalSimplification = "identical-simplification"
    /// `simplified-longer`: x' has more characters than x (after normalisation). Information.
    public static let simplifiedLonger = "simplified-longer"
    /// `context-leak`: x' is not x but contains ≥ 90 % of x's distinct word 5-grams. Warning.
    public static let contextLeak = "context-leak"
    /// `unrelated-simplification`: x' and x share little vocabulary (token-overlap coefficient < 0.1). Warning.
    public static let unrelatedSimplification = "unrelated-simplification"
    /// `duplicate-id`: the same id is used by more than one example. Error.
    public static let duplicateId = "duplicate-id"
    /// `missing-id`: the example has no id, or a blank one. Warning.
    public static let missingId = "missing-id"

    /// Every code this module can report, in report order, with a title and a
    /// one-paragraph description (including the keys of `data`).
    public static let allCodes: [FindingCode] = [
        FindingCode(
            code: emptyFull, title: "Empty full context",
            description:
                "The full-context input x is empty after normalisation, so the teacher has nothing to read. data: none per example; grouped: count.",
            severity: .error),
        FindingCode(
            code: emptySimplified, title: "Empty simplified input",
            description:
                "The simplified input x' is empty after normalisation, so the student has nothing to read. data: none per example; grouped: count.",
            severity: .error),
        FindingCode(
            code: identicalSimplification, title: "Nothing was simplified",
            description:
                "The simplified input x' is identical to the full context x after normalisation (case, whitespace and edge punctuation ignored): the student sees exactly what the teacher sees. data: characters; grouped: count.",
            severity: .warning),
        FindingCode(
            code: simplifiedLonger, title: "Simplified input is longer",
            description:
                "The simplified input x' has more characters than its full context x after normalisation, which a simplification should not. data: fullCharacters, simplifiedCharacters, lengthRatio (simplified/full); grouped: count, meanLengthRatio, maxLengthRatio.",
            severity: .information),
        FindingCode(
            code: contextLeak, title: "Full context leaks into the simplified input",
            description:
                "The simplified input x' is not identical to x but contains at least 90% of the distinct word 5-grams of x (n = number of words of x when x has fewer than 5), so the student still sees most of the teacher's context. data: coverage, ngramSize; grouped: count, meanCoverage, minCoverage.",
            severity: .warning),
        FindingCode(
            code: unrelatedSimplification, title: "Simplified input unrelated to its full context",
            description:
                "The simplified input x' shares almost no words with its full context x: the token-overlap coefficient |A∩B| / min(|A|,|B|) of their word sets is below 0.1, which suggests the pairs are misaligned. data: tokenOverlap; grouped: count, meanTokenOverlap, maxTokenOverlap.",
            severity: .warning),
        FindingCode(
            code: duplicateId, title: "Duplicate id",
            description:
                "The same id (compared exactly) is used by more than one example, so results keyed by id are ambiguous. data: occurrences; grouped: count (examples), distinctIds.",
            severity: .error),
        FindingCode(
            code: missingId, title: "Missing id",
            description:
                "The example has no id, or an id that is empty or only whitespace; it can only be referred to by position. data: none per example; grouped: count.",
            severity: .warning),
    ]

    static func catalogueEntry(_ code: String) -> FindingCode {
        allCodes.first { $0.code == code }!
    }
}

/// Thresholds of the integrity checks.
public enum IntegrityThresholds {
    /// `unrelated-simplification` when the token-overlap coefficient is below this.
    public static let unrelatedOverlap = 0.1
    /// `context-leak` when the word n-gram coverage is at least this.
    public static let leakCoverage = 0.9
    /// n of the word n-grams used for `context-leak`.
    public static let leakNgram = 5
}

/// Measurements of one pair used by the checks and by ``simplificationStats(_:)``.
struct PairMeasure {
    var fullChars: Int
    var simpChars: Int
    var fullTokenCount: Int
    var simpTokenCount: Int
    var identical: Bool
    /// |A∩B| / min(|A|,|B|) of the distinct word sets; 0 if either is empty.
    var tokenOverlap: Double
    /// Fraction of the full context's distinct word n-grams found in the simplified input.
    var coverage: Double
    var ngramSize: Int

    init(_ p: TextPair) {
        let f = normalizedScalars(p.full, options: .matching)
        let s = normalizedScalars(p.simplified, options: .matching)
        fullChars = f.count
        simpChars = s.count
        identical = !f.isEmpty && f == s
        let ft = wordTokens(p.full)
        let st = wordTokens(p.simplified)
        fullTokenCount = ft.count
        simpTokenCount = st.count
        let fs = Set(ft), ss = Set(st)
        if fs.isEmpty || ss.isEmpty {
            tokenOverlap = 0
        } else {
            let (small, large) = fs.count <= ss.count ? (fs, ss) : (ss, fs)
            tokenOverlap = Double(small.filter { large.contains($0) }.count) / Double(small.count)
        }
        let n = min(IntegrityThresholds.leakNgram, ft.count)
        ngramSize = n
        if n == 0 || st.count < n {
            coverage = 0
        } else {
            func grams(_ t: [String]) -> Set<String> {
                var g = Set<String>()
                for i in 0...(t.count - n) { g.insert(t[i..<(i + n)].joined(separator: "\u{1F}")) }
                return g
            }
            let fg = grams(ft), sg = grams(st)
            coverage = Double(fg.filter { sg.contains($0) }.count) / Double(fg.count)
        }
    }
}

private struct RawFinding {
    var code: String
    var index: Int
    var related: [Int] = []
    var data: [String: Double] = [:]
}

private func idIsMissing(_ id: String?) -> Bool {
    guard let id else { return true }
    return id.unicodeScalars.allSatisfy { isWhitespaceScalar($0) }
}

private func rawFindings(_ pairs: [TextPair]) -> [RawFinding] {
    var out: [RawFinding] = []
    var byId: [String: [Int]] = [:]
    for (i, p) in pairs.enumerated() {
        if let id = p.id, !idIsMissing(id) { byId[id, default: []].append(i) }
    }
    for (i, p) in pairs.enumerated() {
        let m = PairMeasure(p)
        if m.fullChars == 0 { out.append(RawFinding(code: Finding.emptyFull, index: i)) }
        if m.simpChars == 0 { out.append(RawFinding(code: Finding.emptySimplified, index: i)) }
        if m.fullChars > 0 && m.simpChars > 0 {
            if m.identical {
                out.append(RawFinding(code: Finding.identicalSimplification, index: i, data: ["characters": Double(m.fullChars)]))
            } else {
                if m.simpChars > m.fullChars {
                    out.append(
                        RawFinding(
                            code: Finding.simplifiedLonger, index: i,
                            data: [
                                "fullCharacters": Double(m.fullChars),
                                "simplifiedCharacters": Double(m.simpChars),
                                "lengthRatio": Double(m.simpChars) / Double(m.fullChars),
                            ]))
                }
                if m.coverage >= IntegrityThresholds.leakCoverage {
                    out.append(
                        RawFinding(
                            code: Finding.contextLeak, index: i,
                            data: [
                                "coverage": m.coverage, "ngramSize": Double(m.ngramSize),
                            ]))
                }
                if m.tokenOverlap < IntegrityThresholds.unrelatedOverlap {
                    out.append(RawFinding(code: Finding.unrelatedSimplification, index: i, data: ["tokenOverlap": m.tokenOverlap]))
                }
            }
        }
        if let id = p.id, let group = byId[id], group.count > 1 {
            out.append(
                RawFinding(
                    code: Finding.duplicateId, index: i, related: group.filter { $0 != i },
                    data: ["occurrences": Double(group.count)]))
        }
        if idIsMissing(p.id) { out.append(RawFinding(code: Finding.missingId, index: i)) }
    }
    return out
}

private func ref(_ pairs: [TextPair], _ i: Int) -> String {
    if let id = pairs[i].id, !idIsMissing(id) { return "\"\(id)\"" }
    return "the example at index \(i)"
}

private func refList(_ pairs: [TextPair], _ indices: [Int], limit: Int = 5) -> String {
    let shown = indices.prefix(limit).map { ref(pairs, $0) }
    var parts = Array(shown)
    if indices.count > limit { parts.append("\(ProseFormat.count(indices.count - limit)) more") }
    switch parts.count {
    case 0: return ""
    case 1: return parts[0]
    case 2: return parts[0] + " and " + parts[1]
    default: return parts.dropLast().joined(separator: ", ") + " and " + parts.last!
    }
}

/// Checks each example on its own and returns one finding per problem per
/// example, ordered by example index and then by the order of ``Finding/allCodes``.
/// Use it for editor diagnostics on the line of each example. Rules:
/// `empty-full` / `empty-simplified` exclude the content checks; an identical
/// simplification excludes `simplified-longer`, `context-leak` and
/// `unrelated-simplification`; the other content checks can co-occur.
public func checkPairsPerExample(_ pairs: [TextPair]) -> [Finding] {
    let F = ProseFormat.self
    return rawFindings(pairs).map { r in
        let entry = Finding.catalogueEntry(r.code)
        let message: String
        switch r.code {
        case Finding.emptyFull:
            message = "The full context is empty, so the teacher has nothing to read."
        case Finding.emptySimplified:
            message = "The simplified input is empty, so the student has nothing to read."
        case Finding.identicalSimplification:
            message =
                "The simplified input is the same as the full context (ignoring case, whitespace and edge punctuation): nothing was simplified."
        case Finding.simplifiedLonger:
            message =
                "The simplified input is longer than the full context (\(F.count(Int(r.data["simplifiedCharacters"]!))) vs \(F.count(Int(r.data["fullCharacters"]!))) characters, \(F.number(r.data["lengthRatio"]!))×)."
        case Finding.contextLeak:
            message =
                "The simplified input contains \(F.percent(r.data["coverage"]!)) of the full context's word \(Int(r.data["ngramSize"]!))-grams: the student still sees most of the teacher's context."
        case Finding.unrelatedSimplification:
            message =
                "The simplified input shares almost no words with its full context (token overlap \(F.number(r.data["tokenOverlap"]!))): the pair may be misaligned."
        case Finding.duplicateId:
            message = "The id \(ref(pairs, r.index)) is also used by \(refListIndices(r.related))."
        default:
            message = "The example has no id."
        }
        let indices = [r.index] + r.related
        return Finding(
            code: r.code, severity: entry.severity, message: message,
            exampleIndices: indices, exampleIds: indices.map { idIsMissing(pairs[$0].id) ? nil : pairs[$0].id },
            data: r.data)
    }
}

private func refListIndices(_ indices: [Int]) -> String {
    let words = indices.count == 1 ? "the example at index" : "the examples at indices"
    let shown = indices.prefix(10).map(String.init)
    let more = indices.count > 10 ? " and \(ProseFormat.count(indices.count - 10)) more" : ""
    return "\(words) \(shown.joined(separator: ", "))\(more)"
}

/// Checks the pairs and returns one finding per code that occurs (in the order of
/// ``Finding/allCodes``), each listing every example concerned. An empty array
/// means the dataset is clean. See ``checkPairsPerExample(_:)`` for the rules.
public func checkPairs(_ pairs: [TextPair]) -> [Finding] {
    let raw = rawFindings(pairs)
    let F = ProseFormat.self
    var result: [Finding] = []
    for entry in Finding.allCodes {
        let group = raw.filter { $0.code == entry.code }
        if group.isEmpty { continue }
        let indices = group.map(\.index)
        let n = indices.count
        let examples = n == 1 ? "1 example" : "\(F.count(n)) examples"
        let has = n == 1 ? "has" : "have"
        let list = refList(pairs, indices)
        var data: [String: Double] = ["count": Double(n)]
        func values(_ key: String) -> [Double] { group.compactMap { $0.data[key] } }
        let message: String
        switch entry.code {
        case Finding.emptyFull:
            message = "\(examples) \(has) an empty full context: \(list)."
        case Finding.emptySimplified:
            message = "\(examples) \(has) an empty simplified input: \(list)."
        case Finding.identicalSimplification:
            message = "\(examples) \(has) a simplified input identical to the full context, so nothing was simplified: \(list)."
        case Finding.simplifiedLonger:
            let v = values("lengthRatio")
            data["meanLengthRatio"] = v.reduce(0, +) / Double(v.count)
            data["maxLengthRatio"] = v.max()!
            message = "\(examples) \(has) a simplified input longer than the full context (up to \(F.number(v.max()!))× as long): \(list)."
        case Finding.contextLeak:
            let v = values("coverage")
            data["meanCoverage"] = v.reduce(0, +) / Double(v.count)
            data["minCoverage"] = v.min()!
            message =
                "In \(examples) the simplified input still contains most of the full context (at least \(F.percent(v.min()!)) of its word 5-grams), so the student sees what the teacher sees: \(list)."
        case Finding.unrelatedSimplification:
            let v = values("tokenOverlap")
            data["meanTokenOverlap"] = v.reduce(0, +) / Double(v.count)
            data["maxTokenOverlap"] = v.max()!
            message =
                "\(examples) \(has) a simplified input that shares almost no words with its full context (token overlap below \(F.number(IntegrityThresholds.unrelatedOverlap))); the pairs may be misaligned: \(list)."
        case Finding.duplicateId:
            var distinct: [String] = []
            var seen = Set<String>()
            for i in indices { if let id = pairs[i].id, seen.insert(id).inserted { distinct.append(id) } }
            data["distinctIds"] = Double(distinct.count)
            let shownIds = distinct.prefix(5).map { "\"\($0)\"" }.joined(separator: ", ")
            let more = distinct.count > 5 ? " and \(F.count(distinct.count - 5)) more" : ""
            message =
                "\(examples) share \(distinct.count == 1 ? "an id" : "\(F.count(distinct.count)) ids") with another example: \(shownIds)\(more)."
        default:
            message = "\(examples) \(has) no id: \(refListIndicesPlain(indices))."
        }
        result.append(
            Finding(
                code: entry.code, severity: entry.severity, message: message,
                exampleIndices: indices,
                exampleIds: indices.map { idIsMissing(pairs[$0].id) ? nil : pairs[$0].id },
                data: data))
    }
    return result
}

private func refListIndicesPlain(_ indices: [Int]) -> String {
    let shown = indices.prefix(10).map(String.init).joined(separator: ", ")
    let more = indices.count > 10 ? " and \(ProseFormat.count(indices.count - 10)) more" : ""
    return (indices.count == 1 ? "index " : "indices ") + shown + more
}

/// Summary statistics of how much the simplified inputs shorten the full contexts.
public struct SimplificationStats: Sendable, Equatable {
    /// Pairs measured: both texts non-empty after normalisation.
    public var pairCount: Int
    /// Pairs left out because one of the texts is empty.
    public var skippedCount: Int
    /// simplified/full length in Unicode scalars of the normalised (NFC) texts.
    public var meanCharacterRatio: Double
    public var medianCharacterRatio: Double
    /// simplified/full length in word tokens (see ``wordTokens(_:)``).
    public var meanTokenRatio: Double
    public var medianTokenRatio: Double
    /// Mean token-overlap coefficient |A∩B| / min(|A|,|B|) of the word sets.
    public var meanTokenOverlap: Double
    /// Mean fraction of the full context's word 5-grams found in the simplified input.
    public var meanContextCoverage: Double
}

/// Length ratios and overlap over all pairs whose texts are both non-empty.
/// All values are 0 when no pair qualifies. The median of an even count is the
/// mean of the two middle values.
public func simplificationStats(_ pairs: [TextPair]) -> SimplificationStats {
    var charR: [Double] = [], tokR: [Double] = [], overlap: [Double] = [], coverage: [Double] = []
    for p in pairs {
        let m = PairMeasure(p)
        guard m.fullChars > 0, m.simpChars > 0, m.fullTokenCount > 0 else { continue }
        charR.append(Double(m.simpChars) / Double(m.fullChars))
        tokR.append(Double(m.simpTokenCount) / Double(m.fullTokenCount))
        overlap.append(m.tokenOverlap)
        coverage.append(m.coverage)
    }
    func mean(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count) }
    func median(_ v: [Double]) -> Double {
        if v.isEmpty { return 0 }
        let s = v.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
    return SimplificationStats(
        pairCount: charR.count, skippedCount: pairs.count - charR.count,
        meanCharacterRatio: mean(charR), medianCharacterRatio: median(charR),
        meanTokenRatio: mean(tokR), medianTokenRatio: median(tokR),
        meanTokenOverlap: mean(overlap), meanContextCoverage: mean(coverage))
}
