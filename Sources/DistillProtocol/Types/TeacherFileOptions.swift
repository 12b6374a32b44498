import DistillJSON
import DistillTensor

/// `options` of a teacher file (see Protocol/README.md, Files): which values to read, what
/// to accept, and the other files that complete it.
public struct TeacherFileOptions: Sendable, Equatable {
    /// What the values are (`.npy`), or which value tensor or field to read.
    public var kind: OutputKind?
    /// Keep NaN and +∞ instead of refusing the file.
    public var allowNonFinite: Bool
    /// The vocabulary size (top-k outputs); at least 1.
    public var vocabSize: Int?
    /// A vocabulary file giving labels to output ids.
    public var vocabulary: String?
    /// An `.npy` of top-k indices matching the main `.npy`'s values.
    public var indices: String?
    /// An `.npy` [N, T] mask.
    public var mask: String?

    public static let keys: Set<String> = ["kind", "allowNonFinite", "vocabSize", "vocabulary", "indices", "mask"]

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

    /// Reads the options object member by member, in the order given, so the first mistake is
    /// the one reported, naming its exact member (`params.options.vocabSize`).
    public init(_ field: Field) throws {
        self.init()
        guard field.json.isObject else { throw field.fail("teacher options must be an object, got \(field.json.kindDescription)") }
        for (key, value) in try field.members() {
            switch key {
            case "kind": kind = OutputKind(rawValue: try value.oneOf(OutputKind.allCases.map(\.rawValue)))
            case "allowNonFinite": allowNonFinite = try value.bool()
            case "vocabSize": vocabSize = try value.int(min: 1)
            case "vocabulary": vocabulary = try value.string()
            case "indices": indices = try value.string()
            case "mask": mask = try value.string()
            default:
                throw value.fail("unknown field; expected one of \(Self.keys.sorted().joined(separator: ", "))")
            }
        }
    }

    /// The options as the reply echoes them (`source.options`): the members that are set.
    public var json: JSON {
        let members: [(String, JSON?)] = [
            ("kind", kind.map { JSON($0.rawValue) }), ("allowNonFinite", allowNonFinite ? JSON(true) : nil),
            ("vocabSize", vocabSize.map { JSON($0) }), ("vocabulary", vocabulary.map { JSON($0) }),
            ("indices", indices.map { JSON($0) }), ("mask", mask.map { JSON($0) }),
        ]
        return JSON.object(members.compactMap { key, value in value.map { (key, $0) } })
    }
}
