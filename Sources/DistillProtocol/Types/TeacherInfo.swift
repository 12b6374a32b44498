import DistillJSON
import DistillSourceOptions
import DistillTensor

/// What `teacher/load` and `teacher/info` answer: a loaded teacher's shape, memory and origin
/// (schema `store.json#/$defs/teacherInfo`).
public struct TeacherInfo: ResponseType {
    /// Where a teacher was read from; absent for inline data and builtins.
    public struct Source: Sendable {
        public var path: String
        /// The format actually read (detected when none was given).
        public var format: TeacherFormat?
        public var options: TeacherOptions

        public init(path: String, format: TeacherFormat?, options: TeacherOptions) {
            self.path = path
            self.format = format
            self.options = options
        }
    }

    public var name: String
    public var kind: OutputKind
    public var isTopK: Bool
    public var examples: Int
    public var positions: Int
    public var vocab: Int
    /// k for top-k outputs.
    public var k: Int?
    /// The values' type in memory.
    public var dtype: ScalarType
    /// The values' type as stored ("F16", "<f4", "json", "float32" for inline data).
    public var sourceDtype: String
    public var hasMask: Bool
    public var idCount: Int?
    public var vocabularyCount: Int?
    public var residentBytes: Int
    public var mappedBytes: Int
    /// NaN, +∞ and −∞ counts in the values.
    public var nonFinite: (nan: Int, posInf: Int, negInf: Int)
    public var source: Source?
    public var warnings: [String]
    /// Seconds since 1970.
    public var loadedAt: Double

    public init(
        name: String, kind: OutputKind, isTopK: Bool, examples: Int, positions: Int, vocab: Int, k: Int?, dtype: ScalarType,
        sourceDtype: String, hasMask: Bool, idCount: Int?, vocabularyCount: Int?, residentBytes: Int, mappedBytes: Int,
        nonFinite: (nan: Int, posInf: Int, negInf: Int), source: Source?, warnings: [String], loadedAt: Double
    ) {
        self.name = name
        self.kind = kind
        self.isTopK = isTopK
        self.examples = examples
        self.positions = positions
        self.vocab = vocab
        self.k = k
        self.dtype = dtype
        self.sourceDtype = sourceDtype
        self.hasMask = hasMask
        self.idCount = idCount
        self.vocabularyCount = vocabularyCount
        self.residentBytes = residentBytes
        self.mappedBytes = mappedBytes
        self.nonFinite = nonFinite
        self.source = source
        self.warnings = warnings
        self.loadedAt = loadedAt
    }

    public var json: JSON {
        JSON.object(present: [
            ("type", "teacher"), ("name", JSON(name)), ("kind", JSON(kind.rawValue)), ("layout", isTopK ? "topk" : "dense"),
            ("examples", JSON(examples)), ("positions", JSON(positions)), ("vocab", JSON(vocab)), ("k", k.map { JSON($0) }),
            ("dtype", JSON(dtype.rawValue)), ("sourceDtype", JSON(sourceDtype)), ("hasMask", JSON(hasMask)),
            ("idCount", idCount.map { JSON($0) } ?? .null), ("vocabularyCount", vocabularyCount.map { JSON($0) } ?? .null),
            ("residentBytes", JSON(residentBytes)), ("mappedBytes", JSON(mappedBytes)),
            ("nonFinite", ["nan": JSON(nonFinite.nan), "posInf": JSON(nonFinite.posInf), "negInf": JSON(nonFinite.negInf)]),
            (
                "source",
                source.map { s in
                    ["path": JSON(s.path), "format": s.format.map { JSON($0.rawValue) } ?? .null, "options": s.options.json]
                } ?? .null
            ),
            ("warnings", JSON.array(warnings)), ("loadedAt", JSON(loadedAt)),
        ])
    }
}
