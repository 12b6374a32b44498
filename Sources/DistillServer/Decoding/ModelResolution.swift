import DistillJSON
import DistillModels
import DistillProtocol
import DistillStore
import DistillTensor
import Foundation

/// A teacher or student named in a request, wherever its outputs live.
struct ResolvedModel {
    var outputs: ModelOutputs
    let ids: [String]?
    let labels: [String]?
    /// Where it was given in the request (`params.students.A`).
    let field: Field
    /// "inline", "teacher 'name'" or the file path, for messages and the result.
    let source: String
    /// The members of inline outputs, so an error can name `params.students.A.probs[0][2]` exactly.
    var inline: InlineOutputs? = nil
    /// For a model run on inputs: each example's token ids (its positions), and the model.
    var tokens: [[Int]]? = nil
    var languageModel: LanguageModel? = nil

    /// Names for the outputs: the given vocabulary, or a model's tokens as the tokenizer spells
    /// them (decoded here, for the analyses that name outputs, not for every run).
    var outputLabels: [String]? {
        labels ?? languageModel.map { m in (0..<m.vocab).map { (try? m.decode([$0], skipSpecial: false)) ?? m.piece($0) } }
    }

    /// Only the examples `range` (views, no copy); 1003 when this side's tensors do not hold the
    /// teacher's number of examples, so the range cannot be taken from them.
    func examples(_ range: Range<Int>, of total: Int) throws -> ResolvedModel {
        guard outputs.examples == total, let sliced = outputs.examples(range) else {
            throw ResponseError(
                code: .shapeMismatch,
                message: "\(field.path) (\(source)) has \(outputs.examples) examples and the teacher \(total): "
                    + "params.range selects the same rows of both",
                data: ["field": JSON(field.path)])
        }
        var copy = self
        copy.outputs = sliced
        return copy
    }

    /// [examples, positions, vocabulary].
    var shape: [Int] { [outputs.examples, outputs.positions, outputs.vocab] }

    /// ShapeMismatch (1003) unless this model has the same [N, T, V] as `reference`.
    func requireSameShape(as reference: ResolvedModel) throws {
        guard shape != reference.shape else { return }
        throw ResponseError(
            code: .shapeMismatch, message: "\(field.path) has shape \(shape) but \(reference.field.path) has \(reference.shape)",
            data: ["field": JSON(field.path), "teacherShape": JSON.array(reference.shape), "studentShape": JSON.array(shape)])
    }

    /// What a loss complaint about this model names.
    var site: ModelSite { ModelSite(field: field, source: source, inline: inline, shape: shape) }

    var summary: ModelSummary { ModelSummary(source: source, outputs: outputs) }
}

enum ModelResolution {
    /// The model a reference names: a loaded teacher, a file or inline outputs (whose arrays
    /// are read here, once).
    static func resolve(_ reference: ModelReference, context: RequestContext) throws -> ResolvedModel {
        let field = reference.field
        switch reference.source {
        case .loaded(let name):
            return try loaded(name, field: field, context: context)
        case .file(let path):
            return try file(path, field: field, context: context)
        case .inline(let inline):
            return ResolvedModel(outputs: try inline.outputs(), ids: nil, labels: nil, field: field, source: "inline", inline: inline)
        case .running(let name, let inputs, let addSpecial):
            return try running(name, inputs: inputs, addSpecial: addSpecial, field: field, context: context)
        }
    }

    /// A loaded language model run on the request's inputs, as dense log-probabilities
    /// [inputs, longest, vocab]: row t of example i is log p(· | tokens[...t]) of input i; positions
    /// past an input's end are masked (and hold the uniform distribution, so nothing reads NaN).
    static func running(
        _ name: String, inputs: [ModelInput], addSpecial: Bool, field: Field, context: RequestContext
    ) throws -> ResolvedModel {
        guard !inputs.isEmpty else {
            throw field.fail("a model with no inputs reads a dataset only as distill/score's teacher; give texts or tokens")
        }
        let model = try context.server.registry.modelForUse(named: name)
        let sequences = try inputs.map { try ModelMethods.tokens(of: $0, model, addSpecial: addSpecial) }
        if context.cancellation.isCancelled { throw CancellationError() }
        let rows = try modelCall { try model.logProbabilities(sequences) }
        let (N, T, V) = (sequences.count, sequences.map(\.count).max() ?? 0, model.vocab)
        let uniform = -Float(log(Double(V)))
        var values = [Float](repeating: uniform, count: N * T * V)
        var mask = [UInt8](repeating: 0, count: N * T)
        for (i, row) in rows.enumerated() {
            values.replaceSubrange((i * T * V)..<(i * T * V + row.count), with: row)
            for t in 0..<sequences[i].count { mask[i * T + t] = 1 }
        }
        let maskTensor = Tensor(uint8: mask, shape: [N, T])
        let outputs = ModelOutputs(
            kind: .logprobs, layout: .dense(values: Tensor(float32: values, shape: [N, T, V])), examples: N, positions: T, vocab: V,
            mask: maskTensor)
        return ResolvedModel(
            outputs: outputs, ids: nil, labels: nil, field: field, source: "model '\(name)'", tokens: sequences,
            languageModel: model)
    }

    /// A model in a file (`{"path": ..., "format": ..., "options": ...}`), builtins included,
    /// loaded through the registry as an anonymous entry: under the memory budget, held until the
    /// request ends.
    static func file(_ path: String, field: Field, context: RequestContext) throws -> ResolvedModel {
        let file = try TeacherFile(field)
        let entry = try storeCall(under: field.path) {
            try context.server.registry.loadAnonymousTeacher(file, isCancelled: { context.cancellation.isCancelled })
        }
        return ResolvedModel(
            outputs: entry.outputs, ids: entry.ids, labels: entry.vocabulary, field: field, source: entry.source?.path ?? file.path)
    }

    static func loaded(_ name: String, field: Field, context: RequestContext) throws -> ResolvedModel {
        let entry = try context.server.registry.teacherForUse(named: name)
        return ResolvedModel(
            outputs: entry.outputs, ids: entry.ids, labels: entry.vocabulary, field: field, source: "teacher '\(name)'")
    }
}

#if canImport(Glibc)
    import Glibc
#endif

enum FileManagerCompat {
    /// The whole file, or nil when it cannot be read or is not a regular file (a
    /// FIFO or a device could block the reader for ever: it is refused before it
    /// is read, and opening it does not wait for a writer).
    static func read(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = Glibc.read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return n == 0 ? out : nil }
            out.append(contentsOf: chunk[..<n])
        }
    }

    static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return "." }
        return String(cString: buffer)
    }
}
