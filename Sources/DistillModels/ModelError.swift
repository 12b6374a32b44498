/// Why a model could not be loaded or run.
///
/// Every error is a complete sentence naming what it is about: the file, the config field, the
/// tensor (with both shapes when they disagree), or the two lengths of a context that is too long.
/// A load that throws leaves nothing behind: the model is built only once every tensor checked out.
///
/// Errors reading the safetensors files themselves (truncated, lying header) are DistillStore's
/// `StoreError`s and pass through unchanged.
public struct ModelError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable, CaseIterable {
        /// `model_type` (or the GGUF architecture) is not one distilld runs.
        case unknownArchitecture
        /// A pickled PyTorch checkpoint: refused without being opened, because unpickling runs code.
        case pickledCheckpoint
        /// A file the format needs is absent (config.json, the safetensors weights, a shard).
        case missingFile
        /// config.json (or an index) is malformed, lacks a field or holds a value distilld cannot run.
        case badConfig
        /// A tensor the configuration requires is absent.
        case missingTensor
        /// A tensor's shape disagrees with the configuration.
        case shapeMismatch
        /// A tensor's stored type is not one distilld converts.
        case unsupportedDtype
        /// The context is longer than the model's maximum (the request's fault: JSON-RPC -32602).
        case contextTooLong
        /// A token id outside the vocabulary (the request's fault: JSON-RPC -32602).
        case tokenOutOfRange
        /// The tokenizer has ids the model has no row for.
        case vocabMismatch
        /// The tokenizer (tokenizer.json, or a GGUF file's tokenizer metadata) cannot be read or built;
        /// `file` is the file and `field` the member or metadata key at fault.
        case badTokenizer
        /// The path is none of the formats distilld reads (GGUF, a Hugging Face directory, ARPA).
        case unknownFormat
        /// Text was given to a model loaded without a tokenizer (the request's fault: -32602).
        case noTokenizer
    }

    public let code: Code
    /// A complete sentence naming the file, field or tensor.
    public let message: String
    public let file: String?
    public let tensor: String?
    /// The config field or request member at fault ("model_type", "tokens").
    public let field: String?
    /// Extra counts: `expected`/`actual` lengths, `position`, `token`.
    public let numbers: [String: Int]

    public init(
        _ code: Code, _ message: String, file: String? = nil, tensor: String? = nil, field: String? = nil,
        numbers: [String: Int] = [:]
    ) {
        self.code = code
        self.message = message
        self.file = file
        self.tensor = tensor
        self.field = field
        self.numbers = numbers
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// Whether the request, not the model, is at fault (a context too long, a token out of range):
    /// JSON-RPC -32602 on the wire rather than 1004.
    public var isInvalidParams: Bool { code == .contextTooLong || code == .tokenOutOfRange || code == .noTokenizer }
}
