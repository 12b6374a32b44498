import DistillAnalysis
import DistillJSON
import DistillProtocol
import Foundation

/// distill/explain: contributions, direction, temperature and gradient, in numbers,
/// plain words and charts.
enum ExplainMethod {
    static let keys: Set<String> = [
        "teacher", "students", "labels", "temperatures", "temperature", "example", "position", "topK", "charts", "chartsDir",
        "workDoneToken",
    ]

    /// The most temperatures one sweep evaluates: each costs a softmax pair per row.
    static let maxSweep = 256

    @Sendable static func handle(_ context: RequestContext) throws -> JSON {
        let params = try context.fields()
        try params.rejectUnknownKeys(keys)
        let teacher = try ModelResolution.resolve(try params.required("teacher"), context: context)
        guard !teacher.outputs.isTopK else { throw teacher.field.fail("explain needs dense teacher outputs, not top-k") }
        let studentsField = try params.required("students")
        let members = try studentsField.members()
        guard !members.isEmpty else { throw studentsField.fail("names no student") }
        let students = try members.map { m -> (String, ResolvedModel) in
            let s = try ModelResolution.resolve(m.value, context: context)
            guard !s.outputs.isTopK else { throw m.value.fail("explain needs dense outputs, not top-k") }
            try s.requireSameShape(as: teacher)
            return (m.key, s)
        }
        var labels = teacher.labels
        if let l = params.child("labels") {
            let given = try l.array().map { try $0.string() }
            guard given.count == teacher.outputs.vocab else {
                throw l.fail("has \(given.count) labels for a vocabulary of \(teacher.outputs.vocab)")
            }
            labels = given
        }
        let temperaturesField = params.child("temperatures")
        let temperatures = try (temperaturesField?.array() ?? []).map(LossDecoding.temperatureValue)
        if let f = temperaturesField, temperatures.count > maxSweep {
            throw f.fail("has \(temperatures.count) temperatures; at most \(maxSweep) are swept")
        }
        let sweep = params.child("temperatures") == nil ? [0.5, 1, 2, 4, 8] : temperatures
        let tau =
            try params.child("temperature").map(LossDecoding.temperatureValue) ?? 1
        let topK = try params.child("topK")?.int(min: 1, max: 1000) ?? 3
        let rows = try selectRows(params, teacher: teacher)
        let report = try Explanation.run(
            teacher: teacher.outputs, students: students.map { ($0.0, $0.1.outputs) }, rows: rows, labels: labels,
            temperatures: sweep, temperature: tau, topK: topK, isCancelled: { context.cancellation.isCancelled },
            progress: { context.report($0, "explaining") })
        let result = encode(report, rows: rows, teacher: teacher)
        if try params.child("charts")?.bool() ?? true {
            let charts: JSON = [
                "contributions": JSON.object(report.contributionCharts.map { ($0.student, JSON($0.svg)) })
            ]
            if let t = report.temperatureChart { charts["temperature"] = JSON(t) }
            result["charts"] = charts
        }
        if let dirField = params.child("chartsDir") {
            result["chartFiles"] = JSON.array(try writeCharts(report, to: try dirField.nonEmptyString(), field: dirField))
        }
        return result
    }

    /// One example (by id or index) and position, or every valid position.
    static func selectRows(_ params: Field, teacher: ResolvedModel) throws -> [Int] {
        let t = teacher.outputs.positions
        let n = teacher.outputs.examples
        if let e = params.child("example") {
            let index: Int
            if let i = e.json.intValue, teacher.ids == nil || !(teacher.ids!.contains(String(i))) {
                guard i >= 0, i < n else { throw e.fail("example index \(i) is out of range 0..<\(n)") }
                index = i
            } else {
                let id = try e.json.intValue.map(String.init) ?? e.string()
                guard let i = teacher.ids?.firstIndex(of: id) else { throw e.fail("no example has id '\(id)'") }
                index = i
            }
            if let p = params.child("position") {
                let pos = try p.int(min: 0, max: t - 1)
                return [index * t + pos]
            }
            let valid = (0..<t).map { index * t + $0 }.filter { Rows.isValid(teacher.outputs, row: $0) }
            guard !valid.isEmpty else { throw e.fail("example \(index) has no valid position") }
            return valid
        }
        if params.child("position") != nil { throw params.child("position")!.fail("needs params.example") }
        let valid = (0..<(n * t)).filter { Rows.isValid(teacher.outputs, row: $0) }
        guard !valid.isEmpty else { throw teacher.field.fail("has no valid position") }
        return valid
    }

    static func encode(_ r: Explanation.Report, rows: [Int], teacher: ResolvedModel) -> JSON {
        let result: JSON = ["rows": JSON(r.rows), "temperature": JSON(r.temperature)]
        if r.rows == 1 {
            let t = teacher.outputs.positions
            result["example"] = JSON(teacher.ids?[rows[0] / t] ?? String(rows[0] / t))
            result["position"] = JSON(rows[0] % t)
        }
        result["students"] = JSON.array(
            r.students.map { s in
                let o: JSON = ["name": JSON(s.name)]
                o["contributions"] = JSON.array(
                    s.terms.prefix(50).map {
                        ["index": JSON($0.index), "label": JSON($0.label), "p": JSON($0.p), "q": JSON($0.q), "term": JSON($0.term)] as JSON
                    })
                o["topShare"] = ["k": JSON(s.topK), "share": JSON(s.topShare)]
                o["entropy"] = ["teacher": JSON(s.teacherEntropy), "student": JSON(s.studentEntropy), "crossEntropy": JSON(s.crossEntropy)]
                o["direction"] = [
                    "forwardKl": JSON(s.forwardKL), "reverseKl": JSON(s.reverseKL), "sensitiveTo": JSON(s.sensitiveTo),
                    "text": JSON(s.directionSentence),
                ]
                let temperature: JSON = [
                    "sweep": JSON.array(
                        s.sweep.map { ["temperature": JSON($0.temperature), "kl": JSON($0.kl), "scaledKl": JSON($0.scaledKL)] as JSON }),
                    "largeTemperatureLimit": s.largeTemperatureLimit.map { JSON($0) } ?? .null,
                    "smallTemperature": [
                        "teacherArgmax": JSON(s.terms.first { $0.index == s.teacherArgmax }?.label ?? String(s.teacherArgmax)),
                        "studentArgmax": JSON(s.terms.first { $0.index == s.studentArgmax }?.label ?? String(s.studentArgmax)),
                        "agree": JSON(s.teacherArgmax == s.studentArgmax),
                        "argmaxDisagreementCost": JSON(s.argmaxDisagreementCost),
                    ],
                    "text": JSON(s.temperatureSentence),
                ]
                o["temperature"] = temperature
                let labelOf = Dictionary(uniqueKeysWithValues: s.terms.map { ($0.index, $0.label) })
                let order = s.gradient.indices.sorted { s.gradient[$0] < s.gradient[$1] }
                // Round-off leaves ±1e-9 where p = q; only real pushes are named.
                let floor = 1e-6 * (s.gradient.map { abs($0) }.max() ?? 0)
                o["gradient"] = [
                    "temperature": JSON(r.temperature),
                    "values": JSON.array(
                        s.gradient.indices.prefix(1000).map {
                            ["index": JSON($0), "label": JSON(labelOf[$0] ?? "#\($0)"), "value": JSON(s.gradient[$0])] as JSON
                        }),
                    // Gradient descent moves logits against the gradient: negative entries are pushed up.
                    "pushedUp": JSON.array(order.prefix(5).filter { s.gradient[$0] < -floor }.map { labelOf[$0] ?? "#\($0)" }),
                    "pushedDown": JSON.array(order.reversed().prefix(5).filter { s.gradient[$0] > floor }.map { labelOf[$0] ?? "#\($0)" }),
                ]
                return o
            })
        if let c = r.closer { result["closer"] = JSON(c) }
        if let c = r.comparison { result["comparison"] = JSON(c) }
        return result
    }

    static func writeCharts(_ r: Explanation.Report, to directory: String, field: Field) throws -> [String] {
        var written: [String] = []
        var files = r.contributionCharts.map { ("contributions-\(safe($0.student)).svg", $0.svg) }
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
