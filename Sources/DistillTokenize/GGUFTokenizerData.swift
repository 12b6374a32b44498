/// A tokenizer as a GGUF file's `tokenizer.ggml.*` metadata describes it.
///
/// The GGUF reader (DistillModels) fills this from the file; `Tokenizer` builds from it. Field
/// names follow the metadata keys.
public struct GGUFTokenizerData: Sendable, Equatable {
    /// `tokenizer.ggml.model`: "gpt2" (byte-level BPE) or "llama" (SentencePiece-style).
    public var model: String
    /// `tokenizer.ggml.pre`: the pre-tokenizer's name ("smollm", "llama-bpe", "qwen2", "gpt-2", ...).
    public var pre: String?
    public var tokens: [String]
    public var scores: [Float]?
    /// `tokenizer.ggml.token_type`: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    public var tokenTypes: [Int32]?
    /// `tokenizer.ggml.merges`, as "left right" strings.
    public var merges: [String]?
    public var bos: Int?
    public var eos: Int?
    public var unknown: Int?
    public var padding: Int?
    public var addBos: Bool?
    public var addEos: Bool?
    /// `tokenizer.ggml.add_space_prefix`: whether a SentencePiece (`llama`) tokenizer prepends "▁"
    /// to the text (true when absent, as in llama.cpp).
    public var addSpacePrefix: Bool?
    public var chatTemplate: String?

    public init(model: String, tokens: [String]) {
        self.model = model
        self.tokens = tokens
    }
}
