import Dispatch

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `transform` applied to every element, using all cores for large inputs;
/// the result is in input order and identical to a sequential map.
func parallelMap<T: Sendable, R: Sendable>(_ items: [T], _ transform: @Sendable (T) -> R) -> [R] {
    let n = items.count
    let workers = min(8, max(1, ProcessInfoLite.activeProcessorCount))
    if n < 256 || workers == 1 { return items.map(transform) }
    var results = [R?](repeating: nil, count: n)
    let chunk = (n + workers * 4 - 1) / (workers * 4)
    results.withUnsafeMutableBufferPointer { out in
        // Unchecked: each chunk writes only its own indices of `results`.
        nonisolated(unsafe) let base = out.baseAddress!
        withoutActuallyEscaping(transform) { f in
            DispatchQueue.concurrentPerform(iterations: (n + chunk - 1) / chunk) { c in
                let lo = c * chunk, hi = min(n, lo + chunk)
                for i in lo..<hi { (base + i).pointee = f(items[i]) }
            }
        }
    }
    return results.map { $0! }
}

enum ProcessInfoLite {
    static let activeProcessorCount: Int = {
        #if canImport(Glibc) || canImport(Darwin)
            return Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        #else
            return 1
        #endif
    }()
}

/// What a training input was recognised as.
public enum MatchKind: Sendable, Equatable, Hashable {
    /// The input is the full context x of the pair at this index (it belongs to D).
    case full(Int)
    /// The input is the simplified input x' of the pair at this index (it belongs to D').
    case simplified(Int)
    /// The input matches a full context and a simplified input equally well (same
    /// similarity, e.g. a pair whose simplified input equals its full context), so
    /// it cannot be told which dataset it came from.
    case ambiguous(fullPairIndex: Int, simplifiedPairIndex: Int)
    /// The input matches neither (or is empty after normalisation).
    case unknown

    /// "full", "simplified", "ambiguous" or "unknown".
    public var name: String {
        switch self {
        case .full: return "full"
        case .simplified: return "simplified"
        case .ambiguous: return "ambiguous"
        case .unknown: return "unknown"
        }
    }
}

/// How a match was found.
public enum MatchMethod: String, Sendable, Equatable, Hashable {
    /// Equal after ``normalizeText(_:options:)``.
    case exact
    /// Jaccard similarity of character 5-gram shingles ≥ the near threshold.
    case near
}

/// The classification of one training input.
public struct InputMatch: Sendable, Equatable, Hashable {
    /// Position of the input in the `inputs` array.
    public var inputIndex: Int
    public var kind: MatchKind
    /// `nil` when `kind` is `.unknown`.
    public var method: MatchMethod?
    /// 1 for exact matches, the shingle Jaccard similarity for near matches, 0 for unknown.
    public var similarity: Double
    /// The matched pair for `.full` / `.simplified`; `nil` for `.ambiguous` and `.unknown`.
    public var pairIndex: Int?

    public init(inputIndex: Int, kind: MatchKind, method: MatchMethod?, similarity: Double) {
        self.inputIndex = inputIndex
        self.kind = kind
        self.method = method
        self.similarity = similarity
        switch kind {
        case .full(let i), .simplified(let i): pairIndex = i
        case .ambiguous, .unknown: pairIndex = nil
        }
    }
}

/// Counts of a ``Classification``.
public struct ClassificationCounts: Sendable, Equatable, Hashable {
    public var total = 0
    public var full = 0
    public var simplified = 0
    public var ambiguous = 0
    public var unknown = 0
    /// Matches (of any kind but unknown) found by exact comparison.
    public var exact = 0
    /// Matches (of any kind but unknown) found by near-duplicate similarity.
    public var near = 0
    public init() {}
}

/// Which situation the training inputs show.
public enum ClassificationRegime: String, Sendable, Equatable, Hashable {
    /// No inputs were given.
    case noInputs = "no-inputs"
    /// No input is a full context; the matched ones are simplified: D' is used, correct.
    case allSimplified = "all-simplified"
    /// A few (≤ 10 % of the matched, unambiguous inputs) are full contexts.
    case mostlySimplified = "mostly-simplified"
    /// Between 10 % and 90 % of the matched, unambiguous inputs are full contexts.
    case mixed = "mixed"
    /// At least 90 % of the matched, unambiguous inputs are full contexts: D is used.
    case mostlyFull = "mostly-full"
    /// More than half of all inputs match neither dataset.
    case mostlyUnknown = "mostly-unknown"
    /// Every matched input is ambiguous (identical in D and D').
    case inconclusive = "inconclusive"
}

/// The result of ``classifyInputs(pairs:inputs:nearThreshold:)``.
public struct Classification: Sendable, Equatable {
    /// One entry per input, in input order.
    public var matches: [InputMatch]
    public var counts: ClassificationCounts
    /// Fractions of all inputs (0 when there are no inputs).
    public var fullRate: Double
    public var simplifiedRate: Double
    public var ambiguousRate: Double
    public var unknownRate: Double
    /// Share of full contexts among the inputs matched unambiguously: full / (full + simplified).
    public var fullShareOfMatched: Double
    public var nearThreshold: Double
    public var regime: ClassificationRegime
    /// One sentence saying what the inputs are and which dataset that means,
    /// e.g. "918 of 1,000 training inputs are full contexts: the student is being trained on D, not D'."
    public var verdict: String
    /// One sentence on what follows from it.
    public var consequence: String
    /// Extra facts worth a line each (unmatched, ambiguous and near-matched inputs).
    public var notes: [String]
    /// `verdict` and `consequence` in one paragraph.
    public var summary: String { verdict + " " + consequence }
}

/// Classifies each training input as a full context (from D), a simplified input
/// (from D') or unknown.
///
/// Matching, for each input:
/// 1. Exact: the input's normalised text (``normalizeText(_:options:)`` with
///    `.matching`) is looked up in hash maps of the normalised full and
///    simplified texts. If several pairs share a text, the lowest pair index is
///    reported. If it equals both a full and a simplified text, it is ambiguous.
///    An input that is empty after normalisation is unknown.
/// 2. Near: otherwise, the Jaccard similarity of character 5-gram shingle sets
///    of the normalised texts is used. All full and simplified texts with
///    similarity ≥ `nearThreshold` are found exactly (prefix-filtered inverted
///    index, no sampling). The best full and the best simplified candidate are
///    compared: the higher similarity wins; equal similarity is ambiguous.
///    Within one side, ties go to the lowest pair index.
///
/// `nearThreshold` is clamped to [0.05, 1].
public func classifyInputs(pairs: [TextPair], inputs: [String], nearThreshold: Double = 0.8) -> Classification {
    let threshold = nearThreshold.isNaN ? 0.8 : min(1, max(0.05, nearThreshold))
    let n = pairs.count
    var fullScalars: [[Unicode.Scalar]] = []
    var simpScalars: [[Unicode.Scalar]] = []
    fullScalars.reserveCapacity(n)
    simpScalars.reserveCapacity(n)
    var fullExact: [String: Int] = [:]
    var simpExact: [String: Int] = [:]
    fullExact.reserveCapacity(n)
    simpExact.reserveCapacity(n)
    let normalizedPairs = parallelMap(pairs) {
        (normalizedScalars($0.full, options: .matching), normalizedScalars($0.simplified, options: .matching))
    }
    for (i, (f, s)) in normalizedPairs.enumerated() {
        fullScalars.append(f)
        simpScalars.append(s)
        if !f.isEmpty {
            let key = String(String.UnicodeScalarView(f))
            if fullExact[key] == nil { fullExact[key] = i }
        }
        if !s.isEmpty {
            let key = String(String.UnicodeScalarView(s))
            if simpExact[key] == nil { simpExact[key] = i }
        }
    }

    var matches: [InputMatch] = []
    matches.reserveCapacity(inputs.count)
    var pending: [(input: Int, shingles: [UInt64])] = []
    let normalizedInputs = parallelMap(inputs) { normalizedScalars($0, options: .matching) }
    for (k, sc) in normalizedInputs.enumerated() {
        if sc.isEmpty {
            matches.append(InputMatch(inputIndex: k, kind: .unknown, method: nil, similarity: 0))
            continue
        }
        let key = String(String.UnicodeScalarView(sc))
        switch (fullExact[key], simpExact[key]) {
        case let (f?, s?):
            matches.append(
                InputMatch(inputIndex: k, kind: .ambiguous(fullPairIndex: f, simplifiedPairIndex: s), method: .exact, similarity: 1))
        case let (f?, nil):
            matches.append(InputMatch(inputIndex: k, kind: .full(f), method: .exact, similarity: 1))
        case let (nil, s?):
            matches.append(InputMatch(inputIndex: k, kind: .simplified(s), method: .exact, similarity: 1))
        case (nil, nil):
            matches.append(InputMatch(inputIndex: k, kind: .unknown, method: nil, similarity: 0))
            pending.append((k, shingleSet(sc)))
        }
    }

    if !pending.isEmpty && n > 0 {
        let docs = parallelMap(fullScalars + simpScalars) { shingleSet($0) }
        let index = NearDuplicateIndex(documents: docs, threshold: threshold)
        var scratch = NearDuplicateIndex.Scratch(documentCount: index.documentCount)
        for (k, shingles) in pending {
            var bestFull: (pair: Int, sim: Double)? = nil
            var bestSimp: (pair: Int, sim: Double)? = nil
            for hit in index.query(shingles, scratch: &scratch) {
                if hit.document < n {
                    if bestFull == nil || hit.similarity > bestFull!.sim { bestFull = (hit.document, hit.similarity) }
                } else {
                    if bestSimp == nil || hit.similarity > bestSimp!.sim { bestSimp = (hit.document - n, hit.similarity) }
                }
            }
            let m: InputMatch
            switch (bestFull, bestSimp) {
            case let (f?, s?):
                if f.sim > s.sim {
                    m = InputMatch(inputIndex: k, kind: .full(f.pair), method: .near, similarity: f.sim)
                } else if s.sim > f.sim {
                    m = InputMatch(inputIndex: k, kind: .simplified(s.pair), method: .near, similarity: s.sim)
                } else {
                    m = InputMatch(
                        inputIndex: k, kind: .ambiguous(fullPairIndex: f.pair, simplifiedPairIndex: s.pair), method: .near,
                        similarity: f.sim)
                }
            case let (f?, nil):
                m = InputMatch(inputIndex: k, kind: .full(f.pair), method: .near, similarity: f.sim)
            case let (nil, s?):
                m = InputMatch(inputIndex: k, kind: .simplified(s.pair), method: .near, similarity: s.sim)
            case (nil, nil):
                continue
            }
            matches[k] = m
        }
    }

    var c = ClassificationCounts()
    c.total = matches.count
    for m in matches {
        switch m.kind {
        case .full: c.full += 1
        case .simplified: c.simplified += 1
        case .ambiguous: c.ambiguous += 1
        case .unknown: c.unknown += 1
        }
        switch m.method {
        case .exact?: c.exact += 1
        case .near?: c.near += 1
        case nil: break
        }
    }
    return makeClassification(matches: matches, counts: c, threshold: threshold)
}

func makeClassification(matches: [InputMatch], counts c: ClassificationCounts, threshold: Double) -> Classification {
    let total = Double(max(1, c.total))
    let decisive = c.full + c.simplified
    let fullShare = decisive > 0 ? Double(c.full) / Double(decisive) : 0
    let regime: ClassificationRegime
    if c.total == 0 {
        regime = .noInputs
    } else if Double(c.unknown) > 0.5 * Double(c.total) {
        regime = .mostlyUnknown
    } else if decisive == 0 {
        regime = .inconclusive
    } else if c.full == 0 {
        regime = .allSimplified
    } else if fullShare >= 0.9 {
        regime = .mostlyFull
    } else if fullShare <= 0.1 {
        regime = .mostlySimplified
    } else {
        regime = .mixed
    }

    let F = ProseFormat.self
    let totalText = F.count(c.total)
    let inputsWord = c.total == 1 ? "training input" : "training inputs"
    let verdict: String
    let consequence: String
    switch regime {
    case .noInputs:
        verdict = "No training inputs were given, so there is nothing to classify."
        consequence = "Pass the inputs the student was actually trained on."
    case .allSimplified:
        if c.simplified == c.total {
            verdict =
                c.total == 1
                ? "The only training input is a simplified input: the student is trained on D', as intended."
                : "All \(totalText) training inputs are simplified inputs: the student is trained on D', as intended."
        } else {
            verdict =
                "\(F.ratio(c.simplified, of: c.total)) \(inputsWord) are simplified inputs and none is a full context: the student is trained on D', as intended."
        }
        consequence =
            "It learns from the same information it will have when deployed, so training loss is a fair guide to deployed quality."
    case .mostlyFull:
        if c.full == c.total {
            verdict =
                c.total == 1
                ? "The only training input is a full context: the student is being trained on D, not D'."
                : "All \(totalText) training inputs are full contexts: the student is being trained on D, not D'."
        } else {
            verdict = "\(F.ratio(c.full, of: c.total)) \(inputsWord) are full contexts: the student is being trained on D, not D'."
        }
        consequence = "It learns from context it will not have when deployed; expect training loss to look better than deployed quality."
    case .mixed:
        verdict =
            "\(F.ratio(c.full, of: c.total)) \(inputsWord) are full contexts and \(F.count(c.simplified)) are simplified inputs: the training set mixes D and D'."
        consequence =
            "Both datasets were probably concatenated, or the wrong split was used; the student partly learns from context it will not have when deployed, so training loss overstates deployed quality."
    case .mostlySimplified:
        verdict =
            "\(F.ratio(c.full, of: c.total)) \(inputsWord) are full contexts while \(F.count(c.simplified)) are simplified inputs: a few examples of D leaked into the student's training set D'."
        consequence =
            "Those examples teach the student to rely on context it will not have when deployed; replace them with their simplified inputs."
    case .mostlyUnknown:
        let matched = c.total - c.unknown
        var v =
            "\(F.ratio(c.unknown, of: c.total)) \(inputsWord) match neither the full contexts nor the simplified inputs of this dataset: the inputs do not come from this paired dataset."
        if matched > 0 {
            v =
                String(v.dropLast())
                + " (of the \(F.count(matched)) that match, \(F.count(c.full)) \(c.full == 1 ? "is a full context" : "are full contexts") and \(F.count(c.simplified)) \(c.simplified == 1 ? "is simplified" : "are simplified"))."
        }
        verdict = v
        consequence =
            "Check that the right paired dataset was given and that the logged inputs were not transformed (templated, truncated, tokenised) first; nothing can be said about D versus D' until they match."
    case .inconclusive:
        verdict =
            "Every matched training input is identical in D and D' (its simplified input equals its full context), so it cannot be told which dataset was used."
        consequence = "Fix the pairs whose simplified input is not simplified, then classify again."
    }

    var notes: [String] = []
    if c.unknown > 0 && regime != .mostlyUnknown && regime != .noInputs {
        notes.append("\(F.ratio(c.unknown, of: c.total)) \(inputsWord) match neither dataset.")
    }
    if c.ambiguous > 0 {
        notes.append(
            "\(F.count(c.ambiguous, "input")) \(c.ambiguous == 1 ? "matches" : "match") a full context and a simplified input equally well and \(c.ambiguous == 1 ? "was" : "were") not counted as either."
        )
    }
    if c.near > 0 {
        notes.append(
            "\(F.count(c.near, "input")) \(c.near == 1 ? "was" : "were") matched as edited near-duplicates (character 5-gram Jaccard similarity ≥ \(F.number(threshold))) rather than exactly."
        )
    }

    return Classification(
        matches: matches,
        counts: c,
        fullRate: c.total > 0 ? Double(c.full) / total : 0,
        simplifiedRate: c.total > 0 ? Double(c.simplified) / total : 0,
        ambiguousRate: c.total > 0 ? Double(c.ambiguous) / total : 0,
        unknownRate: c.total > 0 ? Double(c.unknown) / total : 0,
        fullShareOfMatched: fullShare,
        nearThreshold: threshold,
        regime: regime,
        verdict: verdict,
        consequence: consequence,
        notes: notes
    )
}
