import DistillAnalysis
import DistillJSON
import DistillMath
import DistillProtocol
import DistillText
import Foundation

/// distill/explain: contributions, direction, temperature and gradient, in numbers,
/// plain words and charts.
enum ExplainMethod {
    @Sendable static func handle(_ request: ExplainRequest, _ context: RequestContext) throws -> ExplainRequest.Response {
        let teacher = try ModelResolution.resolve(request.teacher, context: context)
        guard !teacher.outputs.isTopK else { throw teacher.field.fail("explain needs dense teacher outputs, not top-k") }
        let students = try request.students.get().map { student -> (String, ResolvedModel) in
            let s = try ModelResolution.resolve(try student.model.get(), context: context)
            guard !s.outputs.isTopK else { throw s.field.fail("explain needs dense outputs, not top-k") }
            try s.requireSameShape(as: teacher)
            return (student.name, s)
        }
        var labels = teacher.outputLabels
        if let given = try request.labels.get(), let l = request.labelsField {
            guard given.count == teacher.outputs.vocab else {
                throw l.fail("has \(given.count) labels for a vocabulary of \(teacher.outputs.vocab)")
            }
            labels = given
        }
        let sweep = try request.sweep.get()
        let tau = try request.temperature.get()
        let topK = try request.topK.get()
        let rows = try selectRows(request, teacher: teacher)
        let report = try Explanation.run(
            teacher: teacher.outputs, students: students.map { ($0.0, $0.1.outputs) }, rows: rows, labels: labels,
            temperatures: sweep, temperature: tau, topK: topK, isCancelled: { context.cancellation.isCancelled },
            progress: { context.report($0, "explaining") })
        let tokenLosses = try perToken(teacher, students, labels: labels, temperature: tau, context: context)
        var charts =
            try request.charts.get()
            ? ExplainRequest.Charts(contributions: report.contributionCharts, temperature: report.temperatureChart) : nil
        let tokenCharts = tokenLosses.map(tokenChartsSVG) ?? []
        charts?.tokens = tokenCharts
        let chartFiles = try request.chartsDir.get().map {
            try writeCharts(report, tokenCharts: tokenCharts, to: $0.directory, field: $0.field)
        }
        let t = teacher.outputs.positions
        var response = ExplainRequest.Response(
            rows: report.rows, temperature: report.temperature,
            example: report.rows == 1 ? teacher.ids?[rows[0] / t] ?? String(rows[0] / t) : nil,
            position: report.rows == 1 ? rows[0] % t : nil,
            students: report.students.map(student), closer: report.closer, comparison: report.comparison,
            charts: charts, chartFiles: chartFiles)
        response.tokens = tokenLosses
        return response
    }

    /// With a teacher model run on one text: each student's forward KL at every token, through the
    /// loss engine (reduction none), with the tokens as text. Nil otherwise.
    static func perToken(
        _ teacher: ResolvedModel, _ students: [(String, ResolvedModel)], labels: [String]?, temperature: Double,
        context: RequestContext
    ) throws -> ExplainRequest.TokenLosses? {
        guard let sequences = teacher.tokens, sequences.count == 1, let labels else { return nil }
        let config = LossConfig(name: .forwardKL, temperature: temperature, reduction: .none)
        var losses: [(student: String, values: [Double?])] = []
        for (name, student) in students {
            let r = try LossScorer.score(
                teacher: teacher.outputs, student: student.outputs, config: config,
                isCancelled: { context.cancellation.isCancelled })
            losses.append((name, sequences[0].indices.map { r.valid[$0] ? r.perPosition[$0] : nil }))
        }
        return .init(tokens: sequences[0].map { labels[$0] }, losses: losses)
    }

    /// One bar chart per student: its loss at each token of the text, the tokens along the axis.
    static func tokenChartsSVG(_ t: ExplainRequest.TokenLosses) -> [(student: String, svg: String)] {
        t.losses.map { s in
            (
                s.student,
                barChartSVG(
                    title: "KL(teacher ‖ \(s.student)) at each token (predicting the next)",
                    labels: t.tokens.map { $0.replacingOccurrences(of: "\n", with: "⏎") }, values: s.values.map { $0 ?? 0 },
                    valueLabel: "nats")
            )
        }
    }

    static func student(_ s: Explanation.StudentExplanation) -> ExplainRequest.Student {
        let labelOf = Dictionary(uniqueKeysWithValues: s.terms.map { ($0.index, $0.label) })
        let order = s.gradient.indices.sorted { s.gradient[$0] < s.gradient[$1] }
        // Round-off leaves ±1e-9 where p = q; only real pushes are named.
        let floor = 1e-6 * (s.gradient.map { abs($0) }.max() ?? 0)
        return ExplainRequest.Student(
            name: s.name,
            contributions: s.terms.prefix(50).map {
                ExplainRequest.Contribution(index: $0.index, label: $0.label, p: $0.p, q: $0.q, term: $0.term)
            },
            topK: s.topK, topShare: s.topShare, teacherEntropy: s.teacherEntropy, studentEntropy: s.studentEntropy,
            crossEntropy: s.crossEntropy, forwardKL: s.forwardKL, reverseKL: s.reverseKL, sensitiveTo: s.sensitiveTo,
            directionText: s.directionSentence,
            sweep: s.sweep.map { ExplainRequest.SweepPoint(temperature: $0.temperature, kl: $0.kl, scaledKL: $0.scaledKL) },
            largeTemperatureLimit: s.largeTemperatureLimit,
            teacherArgmax: s.terms.first { $0.index == s.teacherArgmax }?.label ?? String(s.teacherArgmax),
            studentArgmax: s.terms.first { $0.index == s.studentArgmax }?.label ?? String(s.studentArgmax),
            argmaxesAgree: s.teacherArgmax == s.studentArgmax, argmaxDisagreementCost: s.argmaxDisagreementCost,
            temperatureText: s.temperatureSentence,
            gradient: s.gradient.indices.prefix(1000).map {
                ExplainRequest.GradientValue(index: $0, label: labelOf[$0] ?? "#\($0)", value: s.gradient[$0])
            },
            // Gradient descent moves logits against the gradient: negative entries are pushed up.
            pushedUp: order.prefix(5).filter { s.gradient[$0] < -floor }.map { labelOf[$0] ?? "#\($0)" },
            pushedDown: order.reversed().prefix(5).filter { s.gradient[$0] > floor }.map { labelOf[$0] ?? "#\($0)" })
    }

    /// One example (by id or index) and position, or every valid position.
    static func selectRows(_ request: ExplainRequest, teacher: ResolvedModel) throws -> [Int] {
        let t = teacher.outputs.positions
        let n = teacher.outputs.examples
        if let e = request.example {
            let index: Int
            if let i = e.json.intValue, teacher.ids == nil || !(teacher.ids!.contains(String(i))) {
                guard i >= 0, i < n else { throw e.fail("example index \(i) is out of range 0..<\(n)") }
                index = i
            } else {
                let id = try e.json.intValue.map(String.init) ?? e.string()
                guard let i = teacher.ids?.firstIndex(of: id) else { throw e.fail("no example has id '\(id)'") }
                index = i
            }
            if let p = request.position {
                let pos = try p.int(min: 0, max: t - 1)
                return [index * t + pos]
            }
            let valid = (0..<t).map { index * t + $0 }.filter { Rows.isValid(teacher.outputs, row: $0) }
            guard !valid.isEmpty else { throw e.fail("example \(index) has no valid position") }
            return valid
        }
        if let p = request.position { throw p.fail("needs params.example") }
        let valid = (0..<(n * t)).filter { Rows.isValid(teacher.outputs, row: $0) }
        guard !valid.isEmpty else { throw teacher.field.fail("has no valid position") }
        return valid
    }

    static func writeCharts(
        _ r: Explanation.Report, tokenCharts: [(student: String, svg: String)] = [], to directory: String, field: Field
    ) throws -> [String] {
        var written: [String] = []
        var files = r.contributionCharts.map { ("contributions-\(safe($0.student)).svg", $0.svg) }
        files += tokenCharts.map { ("tokens-\(safe($0.student)).svg", $0.svg) }
        if let t = r.temperatureChart { files.append(("temperature.svg", t)) }
        for (name, svg) in files {
            let path = (directory as NSString).appendingPathComponent(name)
            do {
                try svg.write(toFile: path, atomically: true, encoding: .utf8)
            } catch {
                throw field.fail("cannot write \(path): \(error.localizedDescription)")
            }
            written.append(path)
        }
        return written
    }

    static func safe(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
    }
}
