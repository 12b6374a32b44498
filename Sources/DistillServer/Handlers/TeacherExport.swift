import DistillJSON
import DistillModels
import DistillProtocol
import DistillStore
import DistillSystem
import Foundation

/// teacher/export: a model's top-k log-probabilities at every target token of a paired dataset, in
/// a safetensors file laid out as distilld reads a top-k teacher:
///
/// - `topk_logprobs` F32 [N, T, K] (best first) and `topk_indices` I64 [N, T, K];
/// - `mask` U8 [N, T] (1 at a target token; T is the longest target);
/// - `tail_mass` F32 [N, T]: the probability outside the top k (kept, so a loss can treat it);
/// - `targets` I64 [N, T]: the target token ids, −100 past a target's end (the hard labels);
/// - `__metadata__`: `ids` (JSON list), `vocab_size`, `format` ("distilld-topk/1"), `model`,
///   `tokenizer`, `context`, `k`, and `separator` (or `prompt`, the format's JSON echo, for a
///   template or a chat template).
///
/// The layout is fixed before the model runs; each part of the examples is written to its rows as
/// soon as it is computed (bounded memory for any dataset), into a temporary file beside `path`
/// that is renamed over it only when everything is written: a failed or cancelled export leaves
/// nothing behind.
enum TeacherExport {
    @Sendable static func handle(_ request: TeacherExportRequest, _ context: RequestContext) throws -> TeacherExportRequest.Response {
        let registry = context.server.registry
        let started = Date()
        let dataset = try registry.dataset(named: request.dataset)
        guard dataset.kind == .paired else {
            throw ResponseError.invalidParams(
                field: "params.dataset", "'\(request.dataset)' is an input list; an export needs pairs with targets")
        }
        let path = absolutePath(request.path)
        try checkWritable(path, request)
        let model = try registry.modelForUse(named: request.model)
        var readers = [
            TextScoring.Reader(
                role: "teacher", field: Field(JSON(request.model), path: "params.model"), name: request.model, model: model,
                addSpecial: true, readsFull: request.context == .full)
        ]
        // A shard: only params.range's examples, their ids those of the whole dataset.
        let selected = try request.range?.resolve(examples: dataset.examples.count)
        let examples = selected.map { Array(dataset.examples[$0]) } ?? dataset.examples
        let targets = try TextScoring.tokenize(&readers, examples: examples, prompt: request.prompt)
        let reader = readers[0]
        let (n, T, K, V) = (examples.count, targets.map(\.count).max() ?? 0, min(request.k, model.vocab), model.vocab)
        let layout = SafetensorsLayout(
            tensors: [
                ("topk_logprobs", "F32", [n, T, K]), ("topk_indices", "I64", [n, T, K]), ("mask", "U8", [n, T]),
                ("tail_mass", "F32", [n, T]), ("targets", "I64", [n, T]),
            ],
            metadata: [
                ("format", "distilld-topk/1"), ("ids", JSON.array(examples.map { JSON($0.id) }).serializedString()),
                ("vocab_size", String(V)), ("model", request.model), ("tokenizer", TextScoring.tokenizerName(model)),
                ("context", request.context.rawValue), ("k", String(K)),
            ]
                + (request.prompt.kind == .separator
                    ? [("separator", request.prompt.separator)]
                    : [("prompt", JSON.object(request.prompt.echo).serializedString())])
                + (selected.map { [("range_start", String($0.lowerBound)), ("dataset_examples", String(dataset.examples.count))] } ?? []))
        let temporary = "\(path).tmp.\(getpid()).\(UInt32.random(in: 1...UInt32.max))"
        let file: FileReplacement
        do { file = try FileReplacement(path: path, temporary: temporary) } catch let e as FileReplacement.Failure {
            throw request.pathField.fail("cannot be written: \(e.reason)")
        }
        do {
            try layout.header.withUnsafeBytes { try file.write($0, at: 0) }
            let size = TextScoring.partSize(examples: n, positions: T, vocab: V, readers: 1)
            var tailSum = 0.0
            var tailMax = 0.0
            var start = 0
            while start < n {
                if context.cancellation.isCancelled { throw CancellationError() }
                let range = start..<min(n, start + size)
                let rows = try TextScoring.targetRows(reader, range: range, targets: targets)
                // Masked rows (past a target's end) hold a valid, uniform top-k, so the file is a
                // well-formed top-k teacher everywhere.
                var values = [Float](repeating: -Float(log(Double(V))), count: range.count * T * K)
                var indices = (0..<(range.count * T * K)).map { Int64($0 % K) }
                var mask = [UInt8](repeating: 0, count: range.count * T)
                var tails = [Float](repeating: 0, count: range.count * T)
                var labels = [Int64](repeating: -100, count: range.count * T)
                for (k, i) in range.enumerated() {
                    rows[k].withUnsafeBufferPointer { all in
                        for j in 0..<targets[i].count {
                            let row = UnsafeBufferPointer(rebasing: all[(j * V)..<((j + 1) * V)])
                            let best = ModelMethods.top(row, K)
                            var kept = 0.0
                            for (slot, id) in best.enumerated() {
                                values[(k * T + j) * K + slot] = row[id]
                                indices[(k * T + j) * K + slot] = Int64(id)
                                kept += exp(Double(row[id]))
                            }
                            let tail = max(0, 1 - kept)
                            tails[k * T + j] = Float(tail)
                            tailSum += tail
                            tailMax = max(tailMax, tail)
                            mask[k * T + j] = 1
                            labels[k * T + j] = Int64(targets[i][j])
                        }
                    }
                }
                try values.withUnsafeBytes { try file.write($0, at: layout.offset(of: "topk_logprobs", row: range.lowerBound)) }
                try indices.withUnsafeBytes { try file.write($0, at: layout.offset(of: "topk_indices", row: range.lowerBound)) }
                try mask.withUnsafeBytes { try file.write($0, at: layout.offset(of: "mask", row: range.lowerBound)) }
                try tails.withUnsafeBytes { try file.write($0, at: layout.offset(of: "tail_mass", row: range.lowerBound)) }
                try labels.withUnsafeBytes { try file.write($0, at: layout.offset(of: "targets", row: range.lowerBound)) }
                start = range.upperBound
                let seconds = Date().timeIntervalSince(started)
                let done = targets[..<start].reduce(0) { $0 + $1.count }
                context.report(
                    Double(start) / Double(max(1, n)), "\(start)/\(n) examples, \(Int(Double(done) / max(seconds, 1e-9))) target tokens/s")
            }
            guard context.cancellation.claimResult() else { throw CancellationError() }
            try file.commit(syncingDirectory: true)
            let tokens = targets.reduce(0) { $0 + $1.count }
            var response = TeacherExportRequest.Response(
                path: path, examples: n, positions: T, k: K, vocab: V, targetTokens: tokens, bytes: layout.fileBytes,
                tailMean: tokens > 0 ? tailSum / Double(tokens) : 0, tailMax: tailMax, seconds: Date().timeIntervalSince(started))
            response.range = selected.map { ($0, dataset.examples.count) }
            return response
        } catch let e as FileReplacement.Failure {
            throw request.pathField.fail("writing failed (nothing was left behind): \(e.reason)")
        }
    }

    /// An existing file is replaced only with `overwrite`; a directory, or a path whose directory
    /// does not exist, is refused before any model runs.
    static func checkWritable(_ path: String, _ request: TeacherExportRequest) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            if isDirectory.boolValue { throw request.pathField.fail("is a directory; give a file name") }
            if !request.overwrite { throw request.pathField.fail("exists; pass overwrite: true to replace it") }
        }
        let directory = (path as NSString).deletingLastPathComponent
        if !FileManager.default.fileExists(atPath: directory.isEmpty ? "." : directory, isDirectory: &isDirectory)
            || !isDirectory.boolValue
        {
            throw request.pathField.fail("is in a directory that does not exist (\(directory))")
        }
    }
}
