import DistillSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writing ARPA text that kenlm (and SRILM) read.
///
/// Layout as lmplz writes it: the `\data\` counts, one section per order, `\end\`.
/// Entries keep the model's own order (for a model built here: unigrams by id,
/// `<unk>`, `<s>`, `</s>` first; higher orders sorted by ids), so equal models give
/// byte-identical files. Numbers are written in the shortest form that reads back
/// as the same `Double`. A back-off weight is written for every n-gram that is a
/// context and for none other; the highest order has none. Suffix fillers added at
/// load (see `NGramModel`) are not written: they are not the model's own n-grams.
extension NGramModel {
    /// The model as ARPA text.
    public func arpaText() -> String {
        var bytes: [UInt8] = []
        writeARPA { bytes.append(contentsOf: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes the model to `path` as ARPA text, through a temporary file in the same
    /// directory renamed into place, so a failed write leaves no partial file.
    public func writeARPA(to path: String) throws {
        let file: FileReplacement
        do { file = try FileReplacement(path: path, temporary: path + ".partial-\(getpid())") } catch let e as FileReplacement.Failure {
            throw NGramError(.file, path: path, "cannot create the ARPA file: \(e.reason)")
        }
        var failure: FileReplacement.Failure?
        writeARPA { chunk in
            guard failure == nil else { return }
            do { try chunk.withUnsafeBytes(file.write) } catch { failure = error as? FileReplacement.Failure }
        }
        do {
            if let failure { throw failure }
            try file.commit()
        } catch let e as FileReplacement.Failure {
            throw NGramError(.file, path: path, "cannot write the ARPA file: \(e.reason)")
        }
    }

    /// Emits the ARPA text in chunks of about 1 MiB.
    func writeARPA(_ emit: ([UInt8]) -> Void) {
        var out: [UInt8] = []
        out.reserveCapacity(1 << 20 + 4096)
        func put(_ s: String) {
            out.append(contentsOf: s.utf8)
            if out.count >= 1 << 20 {
                emit(out)
                out.removeAll(keepingCapacity: true)
            }
        }
        put("\\data\\\n")
        for (k, c) in counts.enumerated() { put("ngram \(k + 1)=\(c)\n") }
        put("\n\\1-grams:\n")
        let unigramsHaveBackoff = order > 1
        for (w, word) in vocabulary.words.enumerated() {
            let b = unigramBackoff[w]
            put(Self.entry(unigramLog10[w], word, unigramsHaveBackoff && hasExtension(b) ? b : nil))
        }
        for (t, table) in tables.enumerated() {
            let n = t + 2
            put("\n\\\(n)-grams:\n")
            let highest = n == order
            for row in 0..<table.listed {
                let words = table.index.key(row).map { vocabulary[$0] }.joined(separator: " ")
                let b = highest ? noExtension : table.backoff[row]
                put(Self.entry(table.log10Prob[row], words, hasExtension(b) ? b : nil))
            }
        }
        put("\n\\end\\\n")
        if !out.isEmpty { emit(out) }
    }

    private static func entry(_ prob: Double, _ words: String, _ backoff: Double?) -> String {
        if let backoff { return "\(prob)\t\(words)\t\(backoff)\n" }
        return "\(prob)\t\(words)\n"
    }
}
