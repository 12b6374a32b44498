import DistillStore
import DistillTensor
import Foundation

/// The embedded default: a small teacher, two students, a paired dataset and a
/// list of training inputs, loadable with `"path": "builtin:demo"` (and
/// `builtin:demo-student-A`, `builtin:demo-student-B`, `builtin:demo-inputs`).
/// `make demo` uses them, so a newcomer sees every analysis without any files.
///
/// The task is next-word prediction over {apple, banana, cherry}; example `ex1`
/// is the textbook case (teacher 0.7/0.2/0.1, student A 0.6/0.3/0.1, student B
/// 0.8/0.1/0.1). The training inputs are mostly full contexts: the mistake
/// `distill/diagnose` exists to catch: most of them are full contexts.
enum Builtin {
    static let labels = ["apple", "banana", "cherry"]

    static let ids = ["ex1", "ex2", "ex3", "ex4", "ex5", "ex6"]

    static let teacherProbs: [[Float]] = [
        [0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1], [0.05, 0.15, 0.8], [0.34, 0.33, 0.33],
    ]
    static let studentA: [[Float]] = [
        [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.25, 0.25, 0.5], [0.45, 0.45, 0.1], [0.1, 0.2, 0.7], [0.3, 0.4, 0.3],
    ]
    static let studentB: [[Float]] = [
        [0.8, 0.1, 0.1], [0.05, 0.9, 0.05], [0.1, 0.1, 0.8], [0.7, 0.2, 0.1], [0.02, 0.08, 0.9], [0.6, 0.2, 0.2],
    ]

    struct Model {
        let outputs: ModelOutputs
        let ids: [String]
        let labels: [String]
    }

    static func model(_ rows: [[Float]]) -> Model {
        let values = Tensor(float32: rows.flatMap { $0 }, shape: [rows.count, 1, labels.count])
        return Model(
            outputs: ModelOutputs(kind: .probs, layout: .dense(values: values), examples: rows.count, positions: 1, vocab: labels.count),
            ids: ids, labels: labels)
    }

    static func teacher(_ path: String) -> Model? {
        switch path {
        case "builtin:demo": return model(teacherProbs)
        case "builtin:demo-student-A": return model(studentA)
        case "builtin:demo-student-B": return model(studentB)
        default: return nil
        }
    }

    enum Dataset {
        case paired([Example])
        case inputs([InputRecord])
    }

    static let pairs: [(full: String, simplified: String, target: String)] = [
        (
            "In the orchard behind the farmhouse the trees hang heavy with red fruit, and the children always ask grandma for the crisp one. She hands each of them an",
            "She hands each of them an", "apple"
        ),
        (
            "The monkey at the zoo ignored the oranges and the nuts the keeper brought and reached straight for the long yellow",
            "The monkey reached for the long yellow", "banana"
        ),
        (
            "The cake was finished with whipped cream and, on the very top, one small dark red",
            "On top of the cake sat one small dark red", "cherry"
        ),
        (
            "For the school lunchbox her mother packed a sandwich, a juice and a piece of fruit that would not bruise: an",
            "Her mother packed a sandwich and an", "apple"
        ),
        (
            "The cocktail was garnished the classic way, with a stem still attached to a single glossy",
            "The cocktail was garnished the classic way, with a stem still attached to a single glossy", "cherry"
        ),
        (
            "Asked to pick any fruit at all from the market stall, he hesitated for a long time and finally chose a",
            "He finally chose a", "banana"
        ),
    ]

    static func dataset(_ path: String) -> Dataset? {
        switch path {
        case "builtin:demo":
            return .paired(
                pairs.enumerated().map { i, p in
                    Example(id: ids[i], full: p.full, simplified: p.simplified, target: p.target, line: i + 1)
                })
        case "builtin:demo-inputs":
            // What a student was "trained on": the full contexts (the mistake), one of
            // them re-cased and re-spaced, one with a word edited, and one input
            // from elsewhere. Example ex5 is left out: it was never simplified, so
            // its input would be ambiguous.
            let texts = [
                pairs[0].full, pairs[1].full, pairs[2].full, pairs[3].full, pairs[5].full,
                "  " + pairs[0].full.uppercased() + "  ",
                pairs[2].full.replacingFirst("whipped cream", with: "fresh cream"),
                "Which fruit is the sweetest of them all?",
            ]
            return .inputs(texts.enumerated().map { InputRecord(text: $1, line: $0 + 1) })
        default:
            return nil
        }
    }
}

extension String {
    fileprivate func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let r = range(of: target) else { return self }
        return replacingCharacters(in: r, with: replacement)
    }
}
