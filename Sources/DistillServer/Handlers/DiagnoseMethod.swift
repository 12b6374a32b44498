import DistillAnalysis
import DistillJSON
import DistillMath
import DistillProtocol
import DistillStore
import DistillText

/// distill/diagnose: which dataset a student really saw, the health of the pairs,
/// and how much the simplification takes away from the teacher.
enum DiagnoseMethod {
    static let keys: Set<String> = ["dataset", "inputs", "nearThreshold", "contextGap", "maxExamples", "workDoneToken"]

    @Sendable static func handle(_ context: RequestContext) throws -> JSON {
        let params = try context.fields()
        try params.rejectUnknownKeys(keys)
        let datasetField = try params.required("dataset")
        let dataset = try context.server.registry.dataset(named: try datasetField.string())
        guard dataset.kind == .paired else {
            throw datasetField.fail("'\(dataset.name)' is an input list; diagnose needs a paired dataset (full and simplified inputs)")
        }
        let inputs = try params.child("inputs").map { try resolveInputs($0, context: context) }
        let threshold =
            try params.child("nearThreshold").map { f -> Double in
                let v = try f.double()
                guard v > 0, v <= 1 else { throw f.fail("must be in (0, 1], got \(v)") }
                return v
            } ?? 0.8
        let listLimit = try params.child("maxExamples")?.int(min: 1, max: 100_000) ?? 20
        var models: Diagnosis.Models? = nil
        if let gap = params.child("contextGap") {
            _ = try gap.object()
            try gap.rejectUnknownKeys(["teacherFull", "teacherSimplified", "student", "studentFull"])
            let full = try ModelResolution.resolve(try gap.required("teacherFull"), context: context)
            let simplified = try ModelResolution.resolve(try gap.required("teacherSimplified"), context: context)
            let student = try gap.child("student").map { try ModelResolution.resolve($0, context: context) }
            let studentFull = try gap.child("studentFull").map { try ModelResolution.resolve($0, context: context) }
            if studentFull != nil && student == nil {
                throw gap.child("studentFull")!.fail("needs params.contextGap.student (the outputs on the simplified inputs) too")
            }
            for other in [simplified] + [student, studentFull].compactMap({ $0 }) {
                try other.requireSameShape(as: full)
            }
            models = Diagnosis.Models(
                teacherFull: full.outputs, teacherSimplified: simplified.outputs, student: student?.outputs,
                studentFull: studentFull?.outputs, ids: full.ids)
        }
        let report: Diagnosis.Report
        do {
            report = try Diagnosis.run(
                dataset: dataset, inputs: inputs, nearThreshold: threshold, models: models, listLimit: listLimit,
                isCancelled: { context.cancellation.isCancelled }, progress: { context.report($0, "diagnosing") })
        } catch let e as LossError {
            throw ResponseError(code: .invalidParams, message: "params.contextGap: \(e)", data: ["field": "params.contextGap"])
        }
        return encode(report, dataset: dataset)
    }

    /// Training inputs: a loaded input list, a file, or an inline list of strings.
    static func resolveInputs(_ field: Field, context: RequestContext) throws -> [InputRecord] {
        if let name = field.json.stringValue {
            let d = try context.server.registry.dataset(named: name)
            guard d.kind == .inputs else { throw field.fail("'\(name)' is a paired dataset; give an input list") }
            return d.inputs
        }
        if field.json.isArray {
            return try field.array().enumerated().map { InputRecord(text: try $1.string(), line: $0 + 1) }
        }
        _ = try field.object()
        try field.rejectUnknownKeys(["path", "format", "options"])
        let file = try DatasetFile(field)
        return try storeCall(under: field.path) { try context.server.registry.loadAnonymousDataset(file, kind: .inputs) }.inputs
    }

    static func encode(_ r: Diagnosis.Report, dataset: DatasetEntry) -> JSON {
        let result: JSON = ["dataset": JSON(dataset.name), "summary": JSON(r.summary)]
        if let c = r.classification {
            let counts = c.counts
            result["classification"] = [
                "total": JSON(counts.total), "full": JSON(counts.full), "simplified": JSON(counts.simplified),
                "ambiguous": JSON(counts.ambiguous), "unknown": JSON(counts.unknown),
                "exact": JSON(counts.exact), "near": JSON(counts.near),
                "rates": [
                    "full": JSON(c.fullRate), "simplified": JSON(c.simplifiedRate), "ambiguous": JSON(c.ambiguousRate),
                    "unknown": JSON(c.unknownRate), "fullShareOfMatched": JSON(c.fullShareOfMatched),
                ],
                "nearThreshold": JSON(c.nearThreshold), "regime": JSON(c.regime.rawValue),
                "verdict": JSON(c.verdict), "consequence": JSON(c.consequence), "notes": JSON.array(c.notes),
                "inputs": JSON.array(
                    r.classified.map { i in
                        let o: JSON = [
                            "index": JSON(i.index), "line": JSON(i.line), "kind": JSON(i.kind), "similarity": JSON(i.similarity),
                        ]
                        if let m = i.method { o["method"] = JSON(m) }
                        if let id = i.exampleId { o["exampleId"] = JSON(id) }
                        return o
                    }),
            ]
        }
        let s = r.stats
        result["integrity"] = [
            "findings": JSON.array(
                r.integrity.map { f in
                    [
                        "code": JSON(f.code), "severity": JSON(f.severity.rawValue), "message": JSON(f.message),
                        "count": JSON(f.exampleIndices.count),
                        "exampleIds": JSON.array(f.exampleIndices.map { dataset.examples[$0].id }),
                    ] as JSON
                }),
            "stats": [
                "pairs": JSON(s.pairCount), "skipped": JSON(s.skippedCount),
                "meanCharacterRatio": JSON(s.meanCharacterRatio), "medianCharacterRatio": JSON(s.medianCharacterRatio),
                "meanTokenRatio": JSON(s.meanTokenRatio), "medianTokenRatio": JSON(s.medianTokenRatio),
                "meanTokenOverlap": JSON(s.meanTokenOverlap), "meanContextCoverage": JSON(s.meanContextCoverage),
            ],
        ]
        if let g = r.contextGap {
            let o: JSON = [
                "perExample": JSON.array(g.perExample.map { ["id": JSON($0.id), "kl": JSON($0.kl)] as JSON }),
                "spread": ScoreMethod.spreadJSON(g.spread),
                "largest": JSON.array(g.largest.map { ["id": JSON($0.id), "kl": JSON($0.kl)] as JSON }),
            ]
            if let st = g.student {
                let split: JSON = [
                    "total": JSON(st.total), "contextGap": JSON(st.contextGap), "capacityGap": JSON(st.capacityGap),
                    "againstSimplifiedTeacher": JSON(st.againstSimplifiedTeacher),
                ]
                if let onFull = st.onFullContext { split["onFullContext"] = JSON(onFull) }
                o["student"] = split
            }
            result["contextGap"] = o
        }
        result["diagnostics"] = JSON.array(r.diagnostics.map { diagnosticJSON($0, uri: dataset.source.map { fileURI($0.path) }) })
        return result
    }

    /// LSP `Diagnostic` on the line of the first example concerned (0-based, whole line).
    static func diagnosticJSON(_ d: Diagnosis.Diagnostic, uri: String?) -> JSON {
        let line = max((d.lines.first ?? 1) - 1, 0)
        let o: JSON = [
            "range": ["start": ["line": JSON(line), "character": 0], "end": ["line": JSON(line + 1), "character": 0]],
            "severity": JSON(d.severity), "code": JSON(d.code), "source": "distilld", "message": JSON(d.message),
        ]
        let data: JSON = ["exampleIds": JSON.array(d.exampleIds), "lines": JSON.array(d.lines)]
        for (k, v) in d.data.sorted(by: { $0.key < $1.key }) { data[k] = JSON(v) }
        o["data"] = data
        if let uri, d.lines.count > 1 {
            o["relatedInformation"] = JSON.array(
                zip(d.exampleIds, d.lines).dropFirst().prefix(20).map { id, l in
                    [
                        "location": [
                            "uri": JSON(uri),
                            "range": ["start": ["line": JSON(l - 1), "character": 0], "end": ["line": JSON(l), "character": 0]],
                        ],
                        "message": JSON("also example \(id)"),
                    ] as JSON
                })
        }
        return o
    }

    static func fileURI(_ path: String) -> String {
        var out = "file://"
        for byte in path.utf8 {
            let c = Character(Unicode.Scalar(byte))
            if c.isLetter && byte < 128 || c.isNumber && byte < 128 || "/-_.~".contains(c) {
                out.append(c)
            } else {
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(2)
            }
        }
        return out
    }
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
