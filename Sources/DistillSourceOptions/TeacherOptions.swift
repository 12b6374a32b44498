import DistillJSON
import DistillTensor

/// File formats for teacher outputs.
public enum TeacherFormat: String, Sendable, CaseIterable {
    case safetensors, npy, jsonl
}

/// How to read a teacher file (see Protocol/README.md, Files). A request gives them as
/// `options`, the workspace file keeps them; the store reads by them.
///
/// - `kind`: for `.npy`, what the values mean (default logits). For safetensors and JSON
///   Lines, which value tensor or field to use when the file holds several (otherwise the
///   only one present is used).
/// - `allowNonFinite` (default false): keep outputs holding NaN or +∞ (counted and
///   reported as a warning) instead of refusing them.
/// - `vocabSize`: vocabulary size for top-k outputs when the file does not say
///   (`__metadata__.vocab_size` wins over a vocabulary file's length; this option wins
///   over both); at least 1.
/// - `vocabulary` (path): a vocabulary file (text, JSON list, tokenizer.json or a
///   {token: id} map) giving labels to output ids.
/// - `indices` (path, `.npy` only): an int32/int64 `.npy` [N,T,K] of top-k indices;
///   the main `.npy` then holds the matching top-k values.
/// - `mask` (path, `.npy` only): a `.npy` [N,T] mask (u1, b1, i4 or i8).
public struct TeacherOptions: Sendable, Equatable {
    public var kind: OutputKind?
    public var allowNonFinite: Bool
    public var vocabSize: Int?
    public var vocabulary: String?
    public var indices: String?
    public var mask: String?

    public init(
        kind: OutputKind? = nil, allowNonFinite: Bool = false, vocabSize: Int? = nil, vocabulary: String? = nil,
        indices: String? = nil, mask: String? = nil
    ) {
        self.kind = kind
        self.allowNonFinite = allowNonFinite
        self.vocabSize = vocabSize
        self.vocabulary = vocabulary
        self.indices = indices
        self.mask = mask
    }

    /// The options as a reply echoes them (`source.options`) and the workspace writes them:
    /// the members that are set, under the names a request gives them.
    public var json: JSON {
        JSON.object(present: [
            ("kind", kind.map { JSON($0.rawValue) }), ("allowNonFinite", allowNonFinite ? JSON(true) : nil),
            ("vocabSize", vocabSize.map { JSON($0) }), ("vocabulary", vocabulary.map { JSON($0) }),
            ("indices", indices.map { JSON($0) }), ("mask", mask.map { JSON($0) }),
        ])
    }
}
