/// A string compared and hashed by its exact scalars.
///
/// Swift's `String` equality and hashing follow canonical equivalence: "é" (U+00E9) equals "e"
/// followed by U+0301. Two such tokens are different tokens in a vocabulary, with different ids,
/// so vocabularies are keyed by this instead.
struct ExactText: Hashable, Sendable {
    let text: String

    init(_ text: String) { self.text = text }

    init<S: Sequence>(scalars: S) where S.Element == Unicode.Scalar {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        text = String(view)
    }

    static func == (lhs: ExactText, rhs: ExactText) -> Bool {
        lhs.text.utf8.elementsEqual(rhs.text.utf8)
    }

    func hash(into hasher: inout Hasher) {
        var copy = text
        copy.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}
