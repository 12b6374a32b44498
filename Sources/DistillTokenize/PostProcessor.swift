/// The post-processors of tokenizer.json that this tokenizer implements, for one text (the pair
/// templates are not used): the special tokens placed around the text when `addSpecial` is set.
indirect enum PostProcessor: Sendable {
    /// The text's tokens, or fixed special tokens, in order.
    enum Item: Sendable {
        case text
        case special(ids: [Int], pieces: [String])
    }

    case template([Item])
    /// A post-processor that changes only offsets (ByteLevel's), which are not computed here.
    case offsetsOnly
    case sequence([PostProcessor])

    static let supported = ["BertProcessing", "ByteLevel", "RobertaProcessing", "Sequence", "TemplateProcessing"]

    func apply(ids: [Int], pieces: [String], addSpecial: Bool) -> (ids: [Int], pieces: [String]) {
        guard addSpecial else { return (ids, pieces) }
        switch self {
        case .offsetsOnly:
            return (ids, pieces)
        case .sequence(let steps):
            return steps.reduce((ids, pieces)) { $1.apply(ids: $0.0, pieces: $0.1, addSpecial: true) }
        case .template(let items):
            var outIds: [Int] = []
            var outPieces: [String] = []
            outIds.reserveCapacity(ids.count + items.count)
            outPieces.reserveCapacity(ids.count + items.count)
            for item in items {
                switch item {
                case .text:
                    outIds.append(contentsOf: ids)
                    outPieces.append(contentsOf: pieces)
                case .special(let specialIds, let specialPieces):
                    outIds.append(contentsOf: specialIds)
                    outPieces.append(contentsOf: specialPieces)
                }
            }
            return (outIds, outPieces)
        }
    }

    /// The single special token placed before the text (the beginning-of-sequence token), if any.
    var leadingToken: Int? { edgeToken(leading: true) }

    /// The single special token placed after the text (the end-of-sequence token), if any.
    var trailingToken: Int? { edgeToken(leading: false) }

    private func edgeToken(leading: Bool) -> Int? {
        switch self {
        case .offsetsOnly: return nil
        case .sequence(let steps):
            let tokens = steps.lazy.compactMap { $0.edgeToken(leading: leading) }
            return leading ? tokens.first : tokens.last
        case .template(let items):
            guard case .special(let ids, _) = leading ? items.first : items.last, ids.count == 1, items.count > 1 else { return nil }
            return ids[0]
        }
    }
}
