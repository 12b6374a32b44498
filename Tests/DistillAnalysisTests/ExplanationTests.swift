import DistillAnalysis
import DistillTensor
import DistillTestSupport
import Foundation
import Testing

/// distill/explain's computation (`Explanation`) against a float64 reference: per-output
/// contributions that sum to the loss, both directions of KL, entropies, the temperature
/// sweep, the large- and small-temperature limits, and the gradient.
struct ExplanationTests {
    /// Double in, Double out (from the same float32 logits): only the order of operations differs.
    static let tolerance = WorstError(absolute: 1e-12, relative: 1e-9)

    /// What `Explanation.run` reports for one student, from the reference, averaged over `rows`.
    struct Expected {
        var p: [Double], q: [Double], terms: [Double], gradient: [Double]
        var forward = 0.0, reverse = 0.0, teacherEntropy = 0.0, studentEntropy = 0.0, crossEntropy = 0.0
        var sweep: [Double]
        var limit: Double? = 0
        let teacherArgmax: Int, studentArgmax: Int, cost: Double

        init(teacher: Logits, student: Logits, rows: [Int], tau: Double, temperatures: [Double]) {
            let v = teacher.v
            (p, q, terms, gradient) = ([Double](repeating: 0, count: v), [Double](repeating: 0, count: v), [], [])
            terms = p
            gradient = p
            sweep = temperatures.map { _ in 0 }
            let n = Double(rows.count)
            for r in rows {
                let zt = teacher.row(r), zs = student.row(r)
                let lp = Reference.logSoftmax(zt, tau: tau), lq = Reference.logSoftmax(zs, tau: tau)
                for i in 0..<v {
                    let (pi, qi) = (exp(lp[i]), exp(lq[i]))
                    p[i] += pi / n
                    q[i] += qi / n
                    terms[i] += (pi > 0 ? pi * (lp[i] - lq[i]) : 0) / n
                    gradient[i] += tau * (qi - pi) / n
                }
                forward += Reference.kl(logP: lp, logQ: lq) / n
                reverse += Reference.kl(logP: lq, logQ: lp) / n
                teacherEntropy += Reference.entropy(logP: lp) / n
                studentEntropy += Reference.entropy(logP: lq) / n
                crossEntropy += Reference.crossEntropy(logP: lp, logQ: lq) / n
                for (j, t) in temperatures.enumerated() {
                    let kl = Reference.kl(logP: Reference.logSoftmax(zt, tau: t), logQ: Reference.logSoftmax(zs, tau: t))
                    sweep[j] += kl / n
                }
                if let l = limit, zt.allSatisfy(\.isFinite), zs.allSatisfy(\.isFinite) {
                    limit = l + ExplanationTests.logitMatching(zt, zs) / n
                } else {
                    limit = nil
                }
            }
            let zt = teacher.row(rows[0]), zs = student.row(rows[0])
            teacherArgmax = zt.firstIndex(of: zt.max()!)!
            studentArgmax = zs.firstIndex(of: zs.max()!)!
            cost = Double(zs[studentArgmax]) - Double(zs[teacherArgmax])
        }
    }

    /// (1/2V)·Σ_i (d_i − d̄)² with d = z_t − z_s: the logit-matching limit of τ²·KL.
    static func logitMatching(_ zt: [Float], _ zs: [Float]) -> Double {
        let d = zip(zt, zs).map { Double($0) - Double($1) }
        let mean = Reference.sum(d) / Double(d.count)
        return Reference.sum(d.map { ($0 - mean) * ($0 - mean) }) / (2 * Double(d.count))
    }

    static func run(
        _ teacher: Logits, _ students: [(String, Logits)], rows: [Int], tau: Double, temperatures: [Double], topK: Int
    ) throws -> Explanation.Report {
        try Explanation.run(
            teacher: teacher.outputs, students: students.map { ($0.0, $0.1.outputs) }, rows: rows, labels: nil,
            temperatures: temperatures, temperature: tau, topK: topK, isCancelled: { false })
    }

    /// Random teachers and students, one position or many, at temperatures from 0.25 to 100.
    @Test(arguments: [2, 3, 17, 64])
    func everyNumberMatchesTheReference(vocab v: Int) throws {
        var rng = Rng(UInt64(v) * 31)
        var worst: [String: WorstError] = [:]
        for trial in 0..<12 {
            let (n, t) = (Int.random(in: 1...3, using: &rng), Int.random(in: 1...3, using: &rng))
            var teacher = Logits(n: n, t: t, v: v, scale: [0.3, 2, 6][trial % 3], rng: &rng)
            if trial % 4 == 3 && v > 2 {
                // An output the teacher never gives: p = 0 there, no contribution, and no large-τ limit.
                teacher.values[Int.random(in: 0..<v, using: &rng)] = -.infinity
            }
            let students = [("A", teacher.perturbed(by: 0.5, rng: &rng)), ("B", teacher.perturbed(by: 2, rng: &rng))]
            let rows = Array((0..<(n * t)).shuffled(using: &rng).prefix(Int.random(in: 1...(n * t), using: &rng)))
            let tau = [0.25, 0.5, 1, 2, 4][Int.random(in: 0..<5, using: &rng)]
            let temperatures = [0.25, 0.5, 1, 2, 4, 8, 100]
            let topK = Int.random(in: 1...(v + 1), using: &rng)
            let report = try Self.run(teacher, students, rows: rows, tau: tau, temperatures: temperatures, topK: topK)
            #expect(report.rows == rows.count && report.temperature == tau)
            var forward: [String: Double] = [:]
            for ((name, student), got) in zip(students, report.students) {
                #expect(got.name == name)
                let want = Expected(teacher: teacher, student: student, rows: rows, tau: tau, temperatures: temperatures)
                forward[name] = want.forward
                let at = "V=\(v) trial \(trial) \(name) τ=\(tau)"
                func record(_ key: String, _ g: Double, _ w: Double, _ where: String = "") {
                    worst[key, default: Self.tolerance].record(g, w, at: at + `where`)
                }
                record("forward KL", got.forwardKL, want.forward)
                record("reverse KL", got.reverseKL, want.reverse)
                record("H(p)", got.teacherEntropy, want.teacherEntropy)
                record("H(q)", got.studentEntropy, want.studentEntropy)
                record("H(p,q)", got.crossEntropy, want.crossEntropy)
                // The contributions sum to the loss they explain.
                record("Σ terms = KL", Reference.sum(got.terms.map(\.term)), want.forward)
                #expect(got.terms.count == v && Set(got.terms.map(\.index)).count == v)
                for term in got.terms {
                    record("term", term.term, want.terms[term.index], " output \(term.index)")
                    record("p", term.p, want.p[term.index])
                    record("q", term.q, want.q[term.index])
                    #expect(term.label == "#\(term.index)")
                }
                // Largest |term| first, ties by index.
                for (a, b) in zip(got.terms, got.terms.dropFirst()) {
                    #expect(abs(a.term) > abs(b.term) || (abs(a.term) == abs(b.term) && a.index < b.index), "\(at)")
                }
                let k = min(topK, v)
                #expect(got.topK == k)
                let largest = want.terms.indices.sorted { abs(want.terms[$0]) > abs(want.terms[$1]) }.prefix(k)
                record("top share", got.topShare, want.forward > 0 ? Reference.sum(largest.map { want.terms[$0] }) / want.forward : 0)
                for (j, point) in got.sweep.enumerated() {
                    #expect(point.temperature == temperatures[j])
                    record("sweep KL", point.kl, want.sweep[j], " τ=\(point.temperature)")
                    let tt = temperatures[j]
                    record("sweep τ²·KL", point.scaledKL, tt * tt * want.sweep[j], " τ=\(point.temperature)")
                }
                if let l = want.limit {
                    record("large-τ limit", got.largeTemperatureLimit ?? .nan, l)
                } else {
                    #expect(got.largeTemperatureLimit == nil, "\(at): a −∞ logit has no large-τ limit")
                }
                for i in 0..<v { record("gradient", got.gradient[i], want.gradient[i], " output \(i)") }
                #expect(got.teacherArgmax == want.teacherArgmax && got.studentArgmax == want.studentArgmax, "\(at)")
                record("argmax cost", got.argmaxDisagreementCost, want.cost)
                let close = abs(want.forward - want.reverse) <= 0.1 * max(want.forward, want.reverse)
                if abs(abs(want.forward - want.reverse) - 0.1 * max(want.forward, want.reverse)) > 1e-9 {
                    #expect(got.sensitiveTo == (close ? "both" : want.forward > want.reverse ? "forward" : "reverse"), "\(at)")
                }
            }
            if abs(forward["A"]! - forward["B"]!) > 1e-9 {
                #expect(report.closer == (forward["A"]! < forward["B"]! ? "A" : "B"), "V=\(v) trial \(trial)")
            }
        }
        report(worst, "explain V=\(v)")
    }

    /// The limits the report names are the real limits of τ²·KL: at τ = 10⁴ the reference
    /// τ²·KL is within 1 % of the large-τ limit, and at τ = 10⁻⁴ the reference τ·KL is
    /// within 10⁻³ of the cost of argmax disagreement (the gap is at most τ·log V). The gradient is the derivative of
    /// τ²·KL with respect to the student's logits, by central differences.
    @Test func limitsAndGradientAreTheMathematicsTheyClaim() throws {
        var rng = Rng(77)
        var worst: [String: WorstError] = [:]
        for trial in 0..<40 {
            let v = Int.random(in: 2...24, using: &rng)
            let teacher = Logits(n: 1, t: 1, v: v, scale: 2, rng: &rng)
            let student = teacher.perturbed(by: 1.5, rng: &rng)
            let tau = [0.5, 1, 3][trial % 3]
            let got = try Self.run(teacher, [("s", student)], rows: [0], tau: tau, temperatures: [], topK: 1).students[0]
            let (zt, zs) = (teacher.values.map(Double.init), student.values.map(Double.init))
            func scaledKL(_ zs: [Double], _ t: Double) -> Double {
                t * t * Reference.kl(logP: Reference.logSoftmax(zt, tau: t), logQ: Reference.logSoftmax(zs, tau: t))
            }
            let at = "trial \(trial) V=\(v)"
            worst["large τ", default: WorstError(absolute: 1e-9, relative: 1e-2)].record(
                got.largeTemperatureLimit!, scaledKL(zs, 1e4), at: at)
            if got.teacherArgmax != got.studentArgmax {
                worst["small τ", default: WorstError(absolute: 1e-3, relative: 0)].record(
                    got.argmaxDisagreementCost, scaledKL(zs, 1e-4) / 1e-4, at: at)
            } else {
                #expect(got.argmaxDisagreementCost == 0)
            }
            let h = 1e-5
            for i in 0..<v {
                var up = zs, down = zs
                up[i] += h
                down[i] -= h
                worst["gradient", default: WorstError(absolute: 1e-7, relative: 1e-6)].record(
                    got.gradient[i], (scaledKL(up, tau) - scaledKL(down, tau)) / (2 * h), at: "\(at) output \(i)")
            }
        }
        report(worst, "explain limits")
    }

    /// Labels name the outputs; a cancelled explanation stops with CancellationError.
    @Test func labelsAndCancellation() throws {
        var rng = Rng(3)
        let teacher = Logits(n: 1, t: 2, v: 3, scale: 1, rng: &rng)
        let student = teacher.perturbed(by: 1, rng: &rng)
        let report = try Explanation.run(
            teacher: teacher.outputs, students: [("s", student.outputs)], rows: [0, 1], labels: ["x", "y", "z"],
            temperatures: [1], temperature: 1, topK: 2, isCancelled: { false })
        for term in report.students[0].terms { #expect(term.label == ["x", "y", "z"][term.index]) }
        #expect(throws: CancellationError.self) {
            _ = try Explanation.run(
                teacher: teacher.outputs, students: [("s", student.outputs)], rows: [0, 1], labels: nil, temperatures: [1],
                temperature: 1, topK: 2, isCancelled: { true })
        }
    }
}
