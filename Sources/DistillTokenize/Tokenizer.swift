/// A text tokenizer as a language model's files describe it: a Hugging Face `tokenizer.json` or a
/// GGUF file's `tokenizer.ggml.*` metadata.
///
/// Encoding follows the reference pipeline of the `tokenizers` package: added tokens that match
/// the raw text are cut out first; each stretch between them is normalized, searched for the
/// added tokens that match normalized text, pre-tokenized, and each pre-token is encoded by the
/// BPE model; `addSpecial` then places the post-processor's special tokens around the result.
/// Text is handled by Unicode scalar throughout, never by grapheme cluster.
///
/// - Important: immutable after `init`, so one tokenizer may encode and decode from any number
///   of threads at once.
public final class Tokenizer: Sendable {
    /// The two families of BPE tokenizers implemented here.
    public enum Kind: String, Sendable {
        /// BPE over UTF-8 bytes spelled as characters (GPT-2, Llama-3, Qwen2, SmolLM).
        case byteLevelBPE
        /// BPE over characters with "▁" for spaces and `<0xNN>` byte tokens for characters
        /// outside the vocabulary (Llama-2, Mistral).
        case sentencePieceBPE
    }

    /// Token ids and their pieces, as the reference's `ids` and `tokens`.
    public struct Encoding: Sendable, Equatable {
        public var ids: [Int]
        /// Each token as the vocabulary spells it ("Ġworld", "▁world", "<0x0A>"); an added token as
        /// the text it matched, including whitespace its `lstrip`/`rstrip` swallowed.
        public var pieces: [String]
    }

    public let kind: Kind
    /// One more than the highest id of the vocabulary and the added tokens: the rows a model's
    /// embedding needs.
    public let vocabSize: Int
    /// The beginning- and end-of-sequence tokens, where the files name them.
    public let bos: Int?
    public let eos: Int?

    let model: BPEModel
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let postProcessor: PostProcessor?
    let decoder: Decoder?
    /// Added tokens matched in the raw text, and those matched in normalized text.
    let rawAddedTokens: AddedTokenMatcher
    let normalizedAddedTokens: AddedTokenMatcher
    /// Added tokens' ids by content, and the string each decodes from (its normalized spelling
    /// when it is matched normalized, as the reference decodes it).
    let addedIds: [ExactText: Int]
    let addedContents: [Int: String]
    let addedDecoding: [Int: String]
    /// Contents of the special added tokens, which `decode(skipSpecial: true)` drops.
    let specialContents: Set<ExactText>

    /// The parts a tokenizer is built from (by the tokenizer.json and GGUF readers).
    struct Parts {
        var kind: Kind
        var model: BPEModel
        var normalizer: Normalizer?
        var preTokenizer: PreTokenizer?
        var postProcessor: PostProcessor?
        var decoder: Decoder?
        var addedTokens: [AddedToken]
        var bos: Int?
        var eos: Int?
    }

    init(parts: Parts) {
        kind = parts.kind
        model = parts.model
        normalizer = parts.normalizer
        preTokenizer = parts.preTokenizer
        postProcessor = parts.postProcessor
        decoder = parts.decoder
        var raw = AddedTokenMatcher()
        var normalized = AddedTokenMatcher()
        var ids: [ExactText: Int] = [:]
        var decoding: [Int: String] = [:]
        var contents: [Int: String] = [:]
        var special: Set<ExactText> = []
        for token in parts.addedTokens {
            let content = Array(token.content.unicodeScalars)
            if token.normalized, let normalizer = parts.normalizer {
                let pattern = normalizer.apply(content)
                normalized.add(token, pattern: pattern)
                decoding[token.id] = String(String.UnicodeScalarView(pattern))
            } else if token.normalized {
                normalized.add(token, pattern: content)
                decoding[token.id] = token.content
            } else {
                raw.add(token, pattern: content)
                decoding[token.id] = token.content
            }
            ids[ExactText(token.content)] = token.id
            contents[token.id] = token.content
            if token.special { special.insert(ExactText(token.content)) }
        }
        rawAddedTokens = raw
        normalizedAddedTokens = normalized
        addedIds = ids
        addedContents = contents
        addedDecoding = decoding
        specialContents = special
        vocabSize = max(parts.model.idCount, (parts.addedTokens.map(\.id).max() ?? -1) + 1)
        bos = parts.bos
        eos = parts.eos
    }

    // MARK: Encoding

    /// The token ids of `text`, with the configured special tokens around them when `addSpecial`.
    public func encode(_ text: String, addSpecial: Bool) -> [Int] {
        run(text, addSpecial: addSpecial, pieces: false).ids
    }

    /// The token ids of `text` and their pieces.
    public func encoding(_ text: String, addSpecial: Bool) -> Encoding {
        run(text, addSpecial: addSpecial, pieces: true)
    }

    private func run(_ text: String, addSpecial: Bool, pieces wantPieces: Bool) -> Encoding {
        let scalars = Array(text.unicodeScalars)
        var ids: [Int] = []
        ids.reserveCapacity(scalars.count / 3 + 4)
        var pieces: [String] = []
        func addToken(_ id: Int, _ piece: String) {
            ids.append(id)
            if wantPieces { pieces.append(piece) }
        }
        for segment in rawAddedTokens.segments(scalars, 0..<scalars.count) {
            switch segment {
            case .token(let id, let piece):
                addToken(id, piece)
            case .text(let range):
                let normalizedText = normalizer?.apply(Array(scalars[range])) ?? Array(scalars[range])
                for part in normalizedAddedTokens.segments(normalizedText, 0..<normalizedText.count) {
                    switch part {
                    case .token(let id, let piece):
                        addToken(id, piece)
                    case .text(let partRange):
                        guard !partRange.isEmpty else { continue }
                        let piece = Piece(
                            text: Array(normalizedText[partRange]), atOrigin: range.lowerBound == 0 && partRange.lowerBound == 0)
                        for preToken in preTokenizer?.apply([piece]) ?? [piece] {
                            let first = ids.count
                            model.encode(preToken.text, into: &ids)
                            if wantPieces {
                                for id in ids[first...] { pieces.append(model.pieces[id] ?? "") }
                            }
                        }
                    }
                }
            }
        }
        guard let postProcessor, addSpecial else { return Encoding(ids: ids, pieces: pieces) }
        let processed = postProcessor.apply(ids: ids, pieces: pieces, addSpecial: true)
        return Encoding(ids: processed.ids, pieces: wantPieces ? processed.pieces : [])
    }

    // MARK: Decoding and the vocabulary

    /// The text of a token sequence, as the reference's `decode`: each id's string (ids outside
    /// the vocabulary are skipped, special tokens too when `skipSpecial`), through the decoder.
    public func decode(_ ids: [Int], skipSpecial: Bool) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            guard let token = addedDecoding[id] ?? modelPiece(id) else { continue }
            if skipSpecial && specialContents.contains(ExactText(token)) { continue }
            tokens.append(token)
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decodeChain(tokens).joined()
    }

    private func modelPiece(_ id: Int) -> String? {
        id >= 0 && id < model.pieces.count ? model.pieces[id] : nil
    }

    /// The string of token `id` (an added token's content, else the vocabulary's spelling).
    public func piece(_ id: Int) -> String? {
        addedContents[id] ?? modelPiece(id)
    }

    /// The id of a token given as its piece.
    public func id(_ piece: String) -> Int? {
        addedIds[ExactText(piece)] ?? model.ids[ExactText(piece)]
    }

    /// Whether `id` is a special added token (control tokens such as `<|im_end|>`).
    public func isSpecial(_ id: Int) -> Bool {
        guard let content = addedContents[id] else { return false }
        return specialContents.contains(ExactText(content))
    }
}
