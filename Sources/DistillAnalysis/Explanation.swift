import DistillMath
import DistillTensor
import DistillText

#if canImport(Glibc)
    import Glibc
#endif

/// distill/explain: why a loss is what it is, for one position or averaged over many.
public enum Explanation {
    public struct Term: Sendable {
        public let index: Int
        public let label: String
        public let p: Double
        public let q: Double
        /// p·log(p/q) (mean over the rows explained).
        public let term: Double
    }

    public struct SweepPoint: Sendable {
        public let temperature: Double
        public let kl: Double
        /// τ²·KL(p^τ‖q^τ).
        public let scaledKL: Double
    }

    public struct StudentExplanation: Sendable {
        public let name: String
        public let forwardKL: Double
        public let reverseKL: Double
        public let teacherEntropy: Double
        public let studentEntropy: Double
        public let crossEntropy: Double
        /// Sorted by |term|, largest first.
        public let terms: [Term]
        /// Share of KL carried by the `topK` largest terms.
        public let topShare: Double
        public let topK: Int
        public let sweep: [SweepPoint]
        /// (1/2V)·‖Δz − mean Δz‖², nil when a logit is −∞.
        public let largeTemperatureLimit: Double?
        public let teacherArgmax: Int
        public let studentArgmax: Int
        /// z_s[a_s] − z_s[a_t]: the limit of τ·KL as τ → 0 (0 when the argmaxes agree).
        public let argmaxDisagreementCost: Double
        /// τ·(q^τ − p^τ) per output at the chosen τ (mean over rows).
        public let gradient: [Double]
        public let temperatureSentence: String
        public let directionSentence: String
        public let sensitiveTo: String
    }

    public struct Report: Sendable {
        public let rows: Int
        public let temperature: Double
        public let students: [StudentExplanation]
        public let comparison: String?
        public let closer: String?
        public let contributionCharts: [(student: String, svg: String)]
        public let temperatureChart: String?
    }

    /// Explains each student against the teacher over `rows` (flat example·T + position
    /// indices). Contributions, entropies, the sweep and the gradient are averaged
    /// over the rows; argmaxes are those of the first row.
    public static func run(
        teacher: ModelOutputs, students: [(String, ModelOutputs)], rows: [Int], labels: [String]?,
        temperatures: [Double], temperature tau: Double, topK: Int, isCancelled: () -> Bool,
        progress: (Double) -> Void = { _ in }
    ) throws -> Report {
        let v = teacher.vocab
        func label(_ i: Int) -> String { labels.map { i < $0.count ? $0[i] : "#\(i)" } ?? "#\(i)" }
        var explanations: [StudentExplanation] = []
        for (studentIndex, (name, student)) in students.enumerated() {
            var p = [Double](repeating: 0, count: v), q = p, terms = p, grad = p
            var fwd = 0.0, rev = 0.0, hp = 0.0, hq = 0.0
            var sweep = [Double](repeating: 0, count: temperatures.count)
            var sweepKL = sweep
            var limit: Double? = 0
            var firstArgmax = (0, 0, 0.0)
            for (k, r) in rows.enumerated() {
                if isCancelled() { throw CancellationError() }
                if k % 64 == 0 { progress((Double(studentIndex) + Double(k) / Double(rows.count)) / Double(students.count)) }
                let zt = try Rows.logValues(teacher, row: r)
                let zs = try Rows.logValues(student, row: r)
                let b = Explain.breakdown(teacherLogits: zt, studentLogits: zs, teacherTemperature: tau, studentTemperature: tau)
                for c in b.contributions {
                    p[c.index] += c.p
                    q[c.index] += c.q
                    terms[c.index] += c.contribution
                }
                fwd += b.kl
                rev += Explain.breakdown(teacherLogits: zs, studentLogits: zt, teacherTemperature: tau, studentTemperature: tau).kl
                hp += b.teacherEntropy
                hq += b.studentEntropy
                for (j, t) in temperatures.enumerated() {
                    // A sweep over a wide vocabulary is the longest work here.
                    if isCancelled() { throw CancellationError() }
                    let kl = Explain.kl(teacherLogits: zt, studentLogits: zs, temperature: t)
                    sweepKL[j] += kl
                    sweep[j] += t * t * kl
                }
                if zt.allSatisfy(\.isFinite) && zs.allSatisfy(\.isFinite), let l = limit {
                    limit = l + Explain.largeTemperatureLimit(teacherLogits: zt, studentLogits: zs)
                } else {
                    limit = nil
                }
                for (i, g) in Explain.gradient(teacherLogits: zt, studentLogits: zs, temperature: tau).enumerated() { grad[i] += g }
                if k == 0 {
                    let a = Explain.argmaxDisagreementCost(teacherLogits: zt, studentLogits: zs)
                    firstArgmax = (a.teacherArgmax, a.studentArgmax, a.cost)
                }
            }
            let n = Double(max(rows.count, 1))
            let termList = (0..<v).map { Term(index: $0, label: label($0), p: p[$0] / n, q: q[$0] / n, term: terms[$0] / n) }
                .sorted { abs($0.term) != abs($1.term) ? abs($0.term) > abs($1.term) : $0.index < $1.index }
            let kl = fwd / n
            let k = min(topK, v)
            let topShare = kl > 0 && kl.isFinite ? termList.prefix(k).reduce(0) { $0 + $1.term } / kl : 0
            let points = temperatures.indices.map {
                SweepPoint(temperature: temperatures[$0], kl: sweepKL[$0] / n, scaledKL: sweep[$0] / n)
            }
            let lim = limit.map { $0 / n }
            let reverse = rev / n
            explanations.append(
                StudentExplanation(
                    name: name, forwardKL: kl, reverseKL: reverse, teacherEntropy: hp / n, studentEntropy: hq / n,
                    crossEntropy: hp / n + kl, terms: termList, topShare: topShare, topK: k, sweep: points,
                    largeTemperatureLimit: lim, teacherArgmax: firstArgmax.0, studentArgmax: firstArgmax.1,
                    argmaxDisagreementCost: firstArgmax.2, gradient: grad.map { $0 / n },
                    temperatureSentence: temperatureSentence(
                        tau: tau, points: points, limit: lim, agree: firstArgmax.0 == firstArgmax.1,
                        cost: firstArgmax.2, teacherLabel: label(firstArgmax.0), studentLabel: label(firstArgmax.1)),
                    directionSentence: directionSentence(name: name, forward: kl, reverse: reverse),
                    sensitiveTo: abs(kl - reverse) <= 0.1 * max(kl, reverse) ? "both" : (kl > reverse ? "forward" : "reverse")))
        }
        let (closer, comparison) = compare(explanations, rows: rows.count)
        let bars = explanations.map { e -> (String, String) in
            let shown = e.terms.prefix(24)
            return (
                e.name,
                barChartSVG(
                    title: "Contributions p·log(p/q) to KL(teacher ‖ \(e.name)) at τ = \(ProseFormat.number(tau))",
                    labels: shown.map(\.label), values: shown.map(\.term), valueLabel: "nats")
            )
        }
        var lineChart: String? = nil
        if !temperatures.isEmpty {
            var series: [(name: String, points: [(Double, Double)])] = explanations.map { e in
                (e.name + ": τ²·KL", e.sweep.map { ($0.temperature, $0.scaledKL) })
            }
            for e in explanations {
                if let l = e.largeTemperatureLimit, let lo = temperatures.min(), let hi = temperatures.max() {
                    series.append((e.name + ": τ→∞ limit", [(lo, l), (hi, l)]))
                }
            }
            lineChart = lineChartSVG(
                title: "τ²·KL(teacher ‖ student) against temperature", xLabel: "temperature τ", yLabel: "τ²·KL (nats)",
                series: series, logX: temperatures.allSatisfy { $0 > 0 } && temperatures.count > 1)
        }
        return Report(
            rows: rows.count, temperature: tau, students: explanations, comparison: comparison, closer: closer,
            contributionCharts: bars, temperatureChart: lineChart)
    }

    static func directionSentence(name: String, forward: Double, reverse: Double) -> String {
        let f = ProseFormat.number(forward), r = ProseFormat.number(reverse)
        let lead =
            "Forward KL(teacher ‖ \(name)) = \(f) rewards covering every output the teacher gives mass to (mode covering); reverse KL(\(name) ‖ teacher) = \(r) rewards putting mass only where the teacher does (mode seeking)."
        if abs(forward - reverse) <= 0.1 * max(forward, reverse) {
            return lead + " They agree within 10 %, so the choice of direction matters little here."
        }
        if forward > reverse {
            return lead + " Forward KL is the larger: \(name) misses mass the teacher assigns, which forward KL punishes more."
        }
        return lead + " Reverse KL is the larger: \(name) puts mass where the teacher has little, which reverse KL punishes more."
    }

    static func temperatureSentence(
        tau: Double, points: [SweepPoint], limit: Double?, agree: Bool, cost: Double,
        teacherLabel: String, studentLabel: String
    ) -> String {
        let argmax =
            agree
            ? "As τ → 0 the loss becomes label matching; both put their top output on \(teacherLabel), so τ²·KL → 0."
            : "As τ → 0 the loss becomes label matching; the student prefers \(studentLabel) to the teacher's \(teacherLabel), and that disagreement costs τ·KL → \(ProseFormat.number(cost))."
        guard let limit else {
            return argmax + " The large-τ limit does not exist here: some output has zero probability (a −∞ logit)."
        }
        let logit = "As τ grows, τ²·KL tends to \(ProseFormat.number(limit)) = (1/2V)·‖Δz − mean Δz‖², pure logit matching."
        let at = points.first { $0.temperature == tau }?.scaledKL
        var place = ""
        if let at, limit > 0 {
            let ratio = at / limit
            if abs(ratio - 1) < 0.1 {
                place =
                    " At τ = \(ProseFormat.number(tau)), τ²·KL = \(ProseFormat.number(at)) is within 10 % of that limit: this τ is in the logit-matching regime."
            } else {
                place =
                    " At τ = \(ProseFormat.number(tau)), τ²·KL = \(ProseFormat.number(at)) is \(ProseFormat.number(ratio)) × the limit: this τ sits between label matching and logit matching."
            }
        }
        return argmax + " " + logit + place
    }

    static func compare(_ e: [StudentExplanation], rows: Int) -> (String?, String?) {
        guard e.count >= 2 else { return (nil, nil) }
        let sorted = e.sorted { $0.forwardKL < $1.forwardKL }
        let best = sorted[0], next = sorted[1]
        let n = ProseFormat.number
        var s = "\(best.name) is closer to the teacher than \(next.name)"
        if rows > 1 { s += " on average over \(ProseFormat.count(rows, "position"))" }
        s += ": KL(teacher ‖ \(best.name)) = \(n(best.forwardKL, 3)) nats against \(n(next.forwardKL, 3)) for \(next.name) (natural log)"
        if best.forwardKL > 0 && next.forwardKL.isFinite {
            s += ", so \(next.name)'s loss is \(n(next.forwardKL / best.forwardKL, 3))× \(best.name)'s."
        } else {
            s += "."
        }
        for x in [best, next] {
            if let top = x.terms.first, top.term != 0 {
                let how = top.q < top.p ? "under-predicts" : "over-predicts"
                s +=
                    " Most of \(x.name)'s loss comes from \(top.label), which \(x.name) \(how) (\(n(top.q, 3)) against the teacher's \(n(top.p, 3))): that term is \(n(top.term, 3)) nats."
            }
        }
        let reverseOrder = e.sorted { $0.reverseKL < $1.reverseKL }
        if reverseOrder[0].name == best.name {
            s += " Reverse KL agrees (\(n(best.reverseKL, 3)) against \(n(next.reverseKL, 3)))."
        } else {
            s +=
                " Reverse KL ranks them the other way (\(best.name) \(n(best.reverseKL, 3)), \(reverseOrder[0].name) \(n(reverseOrder[0].reverseKL, 3))): which student is closer depends on the direction."
        }
        return (best.name, s)
    }
}
