import DistillTensor

/// The embedded demo: a small teacher, two students, a paired dataset and a list of
/// training inputs, named by paths in the `builtin:` scheme (`builtin:demo`,
/// `builtin:demo-student-A`, `builtin:demo-student-B`, `builtin:demo-inputs`). `make demo`
/// uses them, so a newcomer sees every analysis without any files.
///
/// The registry resolves the scheme wherever a path is accepted: a path that starts with
/// `builtin:` never names a file, and one that names no builtin is `.notFound`.
///
/// The task is next-word prediction over {apple, banana, cherry}; example `ex1` is the
/// textbook case (teacher 0.7/0.2/0.1, student A 0.6/0.3/0.1, student B 0.8/0.1/0.1). The
/// training inputs are mostly full contexts: the mistake `distill/diagnose` exists to catch.
public enum Builtins {
    static let scheme = "builtin:"

    /// Whether `path` is in the `builtin:` scheme (the store resolves it; no file is read).
    public static func isBuiltin(_ path: String) -> Bool { path.hasPrefix(scheme) }

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

    /// A builtin teacher's outputs, with its example ids and output labels.
    struct Teacher {
        let outputs: ModelOutputs
        let ids: [String]
        let labels: [String]
    }

    static let teachers: [(path: String, probs: [[Float]])] = [
        ("builtin:demo", teacherProbs), ("builtin:demo-student-A", studentA), ("builtin:demo-student-B", studentB),
    ]

    static func teacher(_ path: String) throws -> Teacher {
        guard let rows = teachers.first(where: { $0.path == path })?.probs else {
            throw unknown(path, "teacher", teachers.map(\.path))
        }
        let values = Tensor(float32: rows.flatMap { $0 }, shape: [rows.count, 1, labels.count])
        return Teacher(
            outputs: ModelOutputs(kind: .probs, layout: .dense(values: values), examples: rows.count, positions: 1, vocab: labels.count),
            ids: ids, labels: labels)
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

    static let datasets = ["builtin:demo", "builtin:demo-inputs"]

    static func dataset(_ path: String) throws -> LoadedDataset {
        switch path {
        case "builtin:demo":
            return .inline(
                examples: pairs.enumerated().map { i, p in
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
            return .inline(inputs: texts.enumerated().map { InputRecord(text: $1, line: $0 + 1) })
        default:
            throw unknown(path, "dataset", datasets)
        }
    }

    /// The builtin dataset at `path`, which must be of `kind`.
    static func dataset(_ path: String, kind: DatasetKind) throws -> LoadedDataset {
        let dataset = try dataset(path)
        guard dataset.kind == kind else {
            let what = [DatasetKind.paired: "a paired dataset", .inputs: "an input list"]
            throw fileError(.notFound, path, "this builtin is \(what[dataset.kind]!), not \(what[kind]!)")
        }
        return dataset
    }

    static func unknown(_ path: String, _ what: String, _ names: [String]) -> StoreError {
        fileError(.notFound, path, "no builtin \(what) has this name; the builtin \(what)s are \(names.joined(separator: ", "))")
    }

    /// A builtin has no file: a format or options given with one are refused, naming the member.
    static func refuseFileSettings(format: Any?, options: Any?, of what: String) throws {
        for (key, given) in [("format", format), ("options", options)] where given != nil {
            throw StoreError(.notAFile, "a builtin \(what) has no \(key); give only its path", field: key)
        }
    }
}

extension String {
    fileprivate func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let r = range(of: target) else { return self }
        return replacingCharacters(in: r, with: replacement)
    }
}
