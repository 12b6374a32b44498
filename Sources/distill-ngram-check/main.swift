// distill-ngram-check: the n-gram layer from the command line, for the kenlm
// comparison in Tests/python/test_ngram.py. It prints one JSON object per line
// (Python's json reads -Infinity); errors go to stderr with exit status 1.
//
//   score MODEL.arpa SENTENCES.txt
//       per sentence: {"total", "perplexity", "words": [[log10 p, n-gram length, unknown], …]}
//   build --order N [--fallback D1,D2,D3] [--skip-special] TRAIN.txt OUT.arpa [--score SENTENCES.txt]
//       {"discounts", "countsOfCounts", "fallback", "counts"}, then the scores of the
//       built model (in memory, not re-read) when --score is given
//   distribution MODEL.arpa CONTEXTS.txt
//       {"vocabulary": […]}, then per context (words after <s>): {"log10": […]}

import DistillNGram
import Foundation

struct Failure: Error {
    let message: String
}

func json(_ x: Double) -> String {
    if x.isNaN { return "NaN" }
    if x.isInfinite { return x < 0 ? "-Infinity" : "Infinity" }
    return "\(x)"
}

func json(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if u.value < 0x20 {
                out += "\\u" + String(repeating: "0", count: 4 - String(u.value, radix: 16).count) + String(u.value, radix: 16)
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out + "\""
}

func lines(_ path: String) throws -> [String] {
    guard let data = FileManager.default.contents(atPath: path) else { throw Failure(message: "cannot read \(path)") }
    var text = String(decoding: data, as: UTF8.self).components(separatedBy: "\n")
    if text.last == "" { text.removeLast() }
    return text
}

func printScores(_ model: NGramModel, _ sentences: [String]) {
    for s in sentences {
        let scores = model.fullScores(sentence: s)
        let total = scores.reduce(0) { $0 + $1.log10Probability }
        let words = scores.map { "[\(json($0.log10Probability)), \($0.ngramLength), \($0.isUnknown)]" }
        print(
            "{\"total\": \(json(total)), \"perplexity\": \(json(model.perplexity(sentence: s))), \"words\": [\(words.joined(separator: ", "))]}"
        )
    }
}

func run(_ arguments: [String]) throws {
    guard let command = arguments.first else { throw Failure(message: "usage: distill-ngram-check score|build|distribution …") }
    var rest = Array(arguments.dropFirst())
    func option(_ name: String) -> String? {
        guard let i = rest.firstIndex(of: name), i + 1 < rest.count else { return nil }
        let value = rest[i + 1]
        rest.removeSubrange(i...(i + 1))
        return value
    }
    func flag(_ name: String) -> Bool {
        guard let i = rest.firstIndex(of: name) else { return false }
        rest.remove(at: i)
        return true
    }
    switch command {
    case "score":
        guard rest.count == 2 else { throw Failure(message: "usage: score MODEL.arpa SENTENCES.txt") }
        printScores(try NGramModel.read(path: rest[0]), try lines(rest[1]))
    case "build":
        guard let orderText = option("--order"), let order = Int(orderText) else { throw Failure(message: "build needs --order N") }
        let fallback = try option("--fallback").map { text in
            try text.split(separator: ",").map { part in
                guard let d = Double(part) else { throw Failure(message: "--fallback takes D1,D2,D3") }
                return d
            }
        }
        let skip = flag("--skip-special")
        let scoring = option("--score")
        guard rest.count == 2 else { throw Failure(message: "usage: build --order N TRAIN.txt OUT.arpa") }
        var builder = try KneserNeyBuilder(
            options: KneserNeyOptions(order: order, discountFallback: fallback, specialTokens: skip ? .skip : .reject))
        for line in try lines(rest[0]) { try builder.add(sentence: line) }
        let built = try builder.build()
        try built.model.writeARPA(to: rest[1])
        let d = built.discounts.map { "[" + $0.d.map(json).joined(separator: ", ") + "]" }.joined(separator: ", ")
        let t = built.discounts.map { "[" + $0.countsOfCounts.map(String.init).joined(separator: ", ") + "]" }
        let f = built.discounts.map { "\($0.fallback)" }
        print(
            "{\"discounts\": [\(d)], \"countsOfCounts\": [\(t.joined(separator: ", "))], \"fallback\": [\(f.joined(separator: ", "))], \"counts\": \(built.model.counts)}"
        )
        if let scoring { printScores(built.model, try lines(scoring)) }
    case "distribution":
        guard rest.count == 2 else { throw Failure(message: "usage: distribution MODEL.arpa CONTEXTS.txt") }
        let model = try NGramModel.read(path: rest[0])
        print("{\"vocabulary\": [\(model.vocabulary.words.map(json).joined(separator: ", "))]}")
        for line in try lines(rest[1]) {
            let ids = whitespaceTokens(line).map { model.vocabulary.id($0) }
            let state = model.state(after: ids, from: model.beginSentenceState)
            print("{\"log10\": [\(model.nextWordLog10Probabilities(after: state).map(json).joined(separator: ", "))]}")
        }
    default:
        throw Failure(message: "unknown command \(command); expected score, build or distribution")
    }
}

do {
    try run(Array(CommandLine.arguments.dropFirst()))
} catch let e as NGramError {
    FileHandle.standardError.write(Data("error: \(e)\n".utf8))
    exit(1)
} catch let e as Failure {
    FileHandle.standardError.write(Data("error: \(e.message)\n".utf8))
    exit(2)
}
