/// A parsed dataset before it becomes a registry entry.
public struct LoadedDataset: Sendable {
    public var kind: DatasetKind
    /// The format read; nil for data that was not read from a file.
    public var format: DatasetFormat?
    public var examples: [Example]
    public var inputs: [InputRecord]
    /// True when the file had no ids and they were made from line numbers.
    public var idsSynthesized: Bool
    public var warnings: [String]
    /// Approximate resident size of the parsed text.
    public var bytes: Int

    public init(
        kind: DatasetKind, format: DatasetFormat?, examples: [Example], inputs: [InputRecord], idsSynthesized: Bool,
        warnings: [String], bytes: Int
    ) {
        self.kind = kind
        self.format = format
        self.examples = examples
        self.inputs = inputs
        self.idsSynthesized = idsSynthesized
        self.warnings = warnings
        self.bytes = bytes
    }
}

/// Loads paired datasets (JSON Lines, CSV) and input lists (text, JSON Lines, JSON list).
///
/// Paired fields: `id`, `full`, `simplified` (required), `target` (optional string),
/// `label` (optional string or integer); the `fields` option renames them. A
/// missing id becomes the example's 1-based start line (as a string) with one
/// warning; ids must be unique. Input lists use the field `input` in JSON Lines;
/// in text files blank lines are skipped.
public enum DatasetLoader {
    /// Tells the format from the extension, else from the first byte that is not white
    /// space (`[` a JSON list, `{` JSON Lines), else plain text for input lists.
    static func detectFormat(bytes: UnsafeRawBufferPointer, path: String, kind: DatasetKind) throws -> DatasetFormat {
        let lower = path.lowercased()
        if lower.hasSuffix(".csv") || lower.hasSuffix(".tsv") { return .csv }
        if lower.hasSuffix(".jsonl") || lower.hasSuffix(".ndjson") { return .jsonl }
        switch firstNonSpace(bytes) {
        case UInt8(ascii: "["): return .json
        case UInt8(ascii: "{"): return .jsonl
        default:
            if lower.hasSuffix(".txt") || kind == .inputs { return .txt }
            throw fileError(.unknownFormat, path, "cannot tell the dataset format; give format (jsonl, csv, txt, json)")
        }
    }

    /// Reads a dataset file, opened and mapped once (the format, when the source gives
    /// none, is told from the same mapping). With a memory `budget`, a JSON Lines line
    /// longer than `TeacherLoader.maxLineBytes(budget:)` is refused, naming the line.
    public static func load(_ source: DatasetSource, budget: Int? = nil) throws -> LoadedDataset {
        try source.checkPaths()
        return try FileGuard.run {
            let map = try MappedFile(path: source.path)
            return try map.withBytes { raw in
                let bytes = droppingBOM(raw)
                let format = try source.format ?? detectFormat(bytes: bytes, path: source.path, kind: source.kind)
                return try load(bytes, source, format, budget: budget)
            }
        }
    }

    /// Parses a dataset already in memory (an editor's buffer), as `load` parses a file.
    ///
    /// Text (CSV, plain text) must be valid UTF-8, as JSON requires: the first
    /// invalid byte is refused with `.invalidUTF8` naming its line, column (byte
    /// within the line, 1-based) and byte offset in the file.
    public static func load(
        _ bytes: UnsafeRawBufferPointer, _ source: DatasetSource, _ format: DatasetFormat, budget: Int? = nil
    ) throws -> LoadedDataset {
        if format == .csv || format == .txt { try checkUTF8(bytes, path: source.path) }
        if format == .jsonl, let limit = TeacherLoader.maxLineBytes(budget: budget) {
            try forEachLine(bytes) { line, text in
                try TeacherLoader.checkLineLength(text, limit: limit, path: source.path, line: line, budget: budget)
            }
        }
        switch (source.kind, format) {
        case (.paired, .jsonl): return try PairedDatasets.jsonLines(bytes, source)
        case (.paired, .csv): return try PairedDatasets.csv(bytes, source)
        case (.inputs, _): return try InputLists.load(bytes, source, format)
        case (.paired, _):
            throw fileError(.unknownFormat, source.path, "paired datasets are JSON Lines or CSV, not \(format.rawValue)")
        }
    }

    /// Parses an editor's buffer of a paired JSON Lines dataset without stopping at
    /// the first problem: bad lines and duplicate ids come back as `problems`, and
    /// every example that could be read (duplicates included) as `examples`.
    public static func parseLeniently(_ bytes: UnsafeRawBufferPointer, _ source: DatasetSource) -> (
        examples: [Example], problems: [StoreError]
    ) {
        var b = PairedDatasets.Builder(path: source.path)
        b.lenient = true
        _ = try? PairedDatasets.jsonLines(bytes, source, builder: &b)
        return (b.examples, b.problems)
    }

    /// The CSV delimiter: the option, else a tab for `.tsv` files and a comma otherwise.
    static func delimiter(_ source: DatasetSource) -> UInt8 {
        source.options.delimiter ?? (source.path.lowercased().hasSuffix(".tsv") ? 0x09 : 0x2C)
    }
}
