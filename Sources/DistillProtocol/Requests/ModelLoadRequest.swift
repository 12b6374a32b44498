/// `model/load`: reads a language model under a name, from a file or directory, or builds an
/// n-gram model from a loaded dataset's text.
public struct ModelLoadRequest: RequestType {
    public static let method = "model/load"
    public static let keys: Set<String> = ["name", "path", "format", "options", "build", "replace", "workDoneToken"]
    public static let fallbackOrdering = Ordering.update
    public typealias Response = ModelInfo

    /// The formats a path may be read as.
    public static let formats = ["gguf", "huggingface", "arpa"]

    public enum Source: Sendable, Equatable {
        /// A GGUF file, a Hugging Face directory or an ARPA file; `format` nil: detected.
        case file(path: String, format: String?, tokenizer: String?)
        /// An interpolated modified Kneser–Ney model of `order` over a dataset's words.
        /// `discountFallback`: D1, D2, D3+ for an order whose counts cannot give discounts.
        /// `withTarget`: each sentence is the context followed by the example's target.
        case build(dataset: String, order: Int, text: BuildText, discountFallback: [Double]?, withTarget: Bool)
    }

    /// Which side of a paired dataset an n-gram model is built from.
    public enum BuildText: String, Sendable, Equatable, CaseIterable {
        case full, simplified
    }

    public let target: LoadTarget
    public let source: Source

    public init(params: Field) throws {
        try params.rejectUnknownKeys(Self.keys)
        target = try LoadTarget(params)
        if let build = params.child("build") {
            for member in ["path", "format", "options"] where params.child(member) != nil {
                throw build.fail("give path or build, not both (\(member) was given too)")
            }
            try build.object().rejectUnknownKeys(["dataset", "order", "text", "discountFallback", "withTarget"])
            let fallback = try build.child("discountFallback").map { f in
                let values = try f.array().map { try $0.double() }
                guard values.count == 3, zip(values, [1.0, 2, 3]).allSatisfy({ $0 > 0 && $0 <= $1 }) else {
                    throw f.fail("must be three discounts D1, D2, D3+ with 0 < Dj ≤ j (lmplz suggests [0.5, 1, 1.5])")
                }
                return values
            }
            let text = try build.child("text")?.oneOf(BuildText.allCases.map(\.rawValue)) ?? BuildText.simplified.rawValue
            source = .build(
                dataset: try build.required("dataset").nonEmptyString(), order: try build.child("order")?.int(min: 1, max: 6) ?? 3,
                text: BuildText(rawValue: text)!, discountFallback: fallback, withTarget: try build.child("withTarget")?.bool() ?? false)
        } else {
            let options = try params.child("options")?.object()
            try options?.rejectUnknownKeys(["tokenizer"])
            source = .file(
                path: try params.required("path").nonEmptyString(), format: try params.child("format")?.oneOf(Self.formats),
                tokenizer: try options?.child("tokenizer")?.nonEmptyString())
        }
    }

    /// A load updates its name; a build also holds its dataset (ordering has one access for all
    /// its names, so the dataset is taken as updated: the build waits for earlier loads of it).
    public var ordering: Ordering {
        if case .build(let dataset, _, _, _, _) = source { return .updating([target.name, dataset]) }
        return target.ordering
    }
}
