import DistillTensor

/// A parsed and validated teacher file, before it becomes a registry entry.
public struct LoadedTeacher: Sendable {
    public var outputs: ModelOutputs
    /// The format read (detected when the source gave none); nil for data that was not read from a file.
    public var format: TeacherFormat?
    /// The dtype of the values as stored (before any conversion).
    public var sourceDtype: String
    public var ids: [String]?
    public var vocabulary: [String]?
    public var warnings: [String]
    /// Bytes copied into process memory (conversions, masks, JSON Lines values).
    public var residentBytes: Int
    /// Bytes of file mapped (the whole file for safetensors and .npy).
    public var mappedBytes: Int
    public var nonFinite: NonFiniteCounts
    public var metadata: [String: String]
}

/// Loads teacher outputs from safetensors, `.npy` or JSON Lines.
///
/// ## safetensors tensor names
/// - dense: one of `logits`, `probs`, `logprobs`, shape [N,V] (T = 1) or [N,T,V],
///   dtype F32, F16 or BF16 (F64 is converted to an F32 copy with a warning);
/// - top-k: `topk_indices` (I32 or I64) with one of `topk_logits`, `topk_probs`,
///   `topk_logprobs` (float, as above), both [N,T,K] or [N,K];
/// - optional `mask` [N,T] (U8, BOOL, I32, I64; non-zero = valid; copied to uint8)
///   or `lengths` [N] (I32, I64; the first lengths[n] positions are valid);
/// - `__metadata__` (all values strings): `ids` (a JSON list of N strings),
///   `vocab` (a JSON list of strings), `vocab_size` (decimal; needed for top-k unless
///   the vocabSize option or a vocabulary gives it).
/// Other tensors are ignored with a warning. When several value tensors are
/// present the `kind` option picks one (dense before top-k for the same kind).
///
/// ## .npy
/// One array of dense values [N,V] or [N,T,V] whose meaning is the `kind` option
/// (default logits). With the `indices` option (an int .npy of the same shape) the
/// values are top-k values; the `mask` option names an [N,T] mask .npy.
///
/// ## JSON Lines
/// One example per line: {"id": str|int (optional), "logits"|"probs"|"logprobs":
/// [[V values] per position] or [V values], or "topk_indices" + "topk_values" (same
/// nesting, K per position) with "kind" (default logits), optional "mask" (one 0/1 or
/// bool per position)}. Non-finite values are written as the strings "NaN",
/// "Infinity", "-Infinity". Rows with fewer positions than the longest are padded
/// with zeros and masked out.
///
/// ## Validation
/// NaN and +∞ in the values (and −∞ in probs) refuse the load with `.nonFinite`
/// unless `allowNonFinite` is set; −∞ in logits or logprobs is allowed (a masked
/// vocabulary entry) and counted apart. Top-k indices must lie in [0, vocab).
public enum TeacherLoader {
    /// Tells the format from the file's first bytes, falling back on its extension.
    public static func detectFormat(path: String) throws -> TeacherFormat {
        let map = try MappedFile(path: path)
        return try map.withBytes { b in try detectFormat(bytes: b, path: path) }
    }

    static func detectFormat(bytes b: UnsafeRawBufferPointer, path: String) throws -> TeacherFormat {
        if b.count >= 6, Array(b[0..<6]) == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59] { return .npy }
        if b.count >= 9, let base = b.baseAddress {
            let n = base.loadUnaligned(as: UInt64.self).littleEndian
            if n >= 2, n < 100_000_000, b[8] == UInt8(ascii: "{") { return .safetensors }
        }
        if firstNonSpace(droppingBOM(b)) == UInt8(ascii: "{") { return .jsonl }
        let lower = path.lowercased()
        if lower.hasSuffix(".safetensors") { return .safetensors }
        if lower.hasSuffix(".npy") { return .npy }
        if lower.hasSuffix(".jsonl") || lower.hasSuffix(".ndjson") { return .jsonl }
        throw fileError(.unknownFormat, path, "cannot tell the format from the content; give format (safetensors, npy, jsonl)")
    }

    /// Parses and validates a teacher file. `progress` receives the fraction of the
    /// value bytes scanned; `isCancelled` is polled between 8 MiB chunks and a
    /// cancelled load throws `CancellationError`.
    ///
    /// The file is opened and mapped once: the format, when the source gives none, is
    /// told from the same mapping the reader then parses.
    ///
    /// `budget` (the registry's memory budget) bounds what parsing may allocate
    /// before the registry sees the size: a JSON Lines line longer than
    /// `maxLineBytes(budget:)` and padded JSON Lines outputs larger than the
    /// budget are refused, naming the line. A file truncated while it is read
    /// fails the load with `.fileChanged`.
    public static func load(
        _ source: TeacherSource, progress: ((Double) -> Void)? = nil, isCancelled: (() -> Bool)? = nil,
        budget: Int? = nil
    ) throws -> LoadedTeacher {
        try source.checkPaths()
        return try FileGuard.run {
            let map = try MappedFile(path: source.path)
            let format = try source.format ?? map.withBytes { try detectFormat(bytes: $0, path: source.path) }
            var parts: TeacherParts
            switch format {
            case .safetensors: parts = try safetensorsParts(SafetensorsFile(map: map), source)
            case .npy: parts = try npyParts(NpyArray(map: map), source)
            case .jsonl: parts = try JSONLinesTeacher.parts(map, source, budget: budget)
            }
            return try parts.finish(format: format, options: source.options, progress: progress, isCancelled: isCancelled)
        }
    }

    /// The longest JSON Lines line parsed under a memory budget: a parsed line
    /// takes about ten times its length while it is converted (jansson's tree of
    /// numbers), so a line may take a sixteenth of the budget. Nil: no budget.
    public static func maxLineBytes(budget: Int?) -> Int? {
        budget.map { max($0 / 16, 4096) }
    }

    static func checkLineLength(_ bytes: UnsafeRawBufferPointer, limit: Int?, path: String, line: Int, budget: Int?) throws {
        guard let limit, bytes.count > limit else { return }
        throw fileError(
            .tooLarge, path, line: line, numbers: ["bytes": bytes.count, "limit": limit, "budget": budget ?? 0],
            "the line is \(bytes.count) bytes; under the \(budget ?? 0)-byte memory budget a line may hold at most \(limit) bytes (a sixteenth of the budget)"
        )
    }
}
