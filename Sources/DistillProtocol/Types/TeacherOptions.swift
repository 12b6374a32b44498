import DistillJSON
import DistillSourceOptions
import DistillTensor

/// `options` of a teacher file (see Protocol/README.md, Files), as a request gives them.
extension TeacherOptions {
    /// The members `options` may hold.
    public static let keys: Set<String> = ["kind", "allowNonFinite", "vocabSize", "vocabulary", "indices", "mask"]

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
}
