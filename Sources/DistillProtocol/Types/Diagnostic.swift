import DistillJSON

/// An LSP `Diagnostic` about examples of a dataset file: on the line of the first example
/// concerned (0-based, the whole line), with the others as related information when the file
/// is known.
public struct Diagnostic: Sendable {
    public var code: String
    /// LSP severity: 1 error, 2 warning, 3 information, 4 hint.
    public var severity: Int
    public var message: String
    public var exampleIds: [String]
    /// 1-based lines of the examples, in `exampleIds` order.
    public var lines: [Int]
    /// Numbers behind the message, written under `data` in key order.
    public var data: [String: Double]
    /// The dataset file's URI, nil for datasets given inline.
    public var uri: String?

    public init(
        code: String, severity: Int, message: String, exampleIds: [String], lines: [Int], data: [String: Double], uri: String?
    ) {
        self.code = code
        self.severity = severity
        self.message = message
        self.exampleIds = exampleIds
        self.lines = lines
        self.data = data
        self.uri = uri
    }

    public var json: JSON {
        let line = max((lines.first ?? 1) - 1, 0)
        let o: JSON = [
            "range": ["start": ["line": JSON(line), "character": 0], "end": ["line": JSON(line + 1), "character": 0]],
            "severity": JSON(severity), "code": JSON(code), "source": "distilld", "message": JSON(message),
        ]
        let data: JSON = ["exampleIds": JSON.array(exampleIds), "lines": JSON.array(lines)]
        for (k, v) in self.data.sorted(by: { $0.key < $1.key }) { data[k] = JSON(v) }
        o["data"] = data
        if let uri, lines.count > 1 {
            o["relatedInformation"] = JSON.array(
                zip(exampleIds, lines).dropFirst().prefix(20).map { id, l in
                    [
                        "location": [
                            "uri": JSON(uri),
                            "range": ["start": ["line": JSON(l - 1), "character": 0], "end": ["line": JSON(l), "character": 0]],
                        ],
                        "message": JSON("also example \(id)"),
                    ] as JSON
                })
        }
        return o
    }

    /// A `file://` URI for an absolute path, with every byte outside the unreserved set
    /// percent-encoded.
    public static func fileURI(_ path: String) -> String {
        var out = "file://"
        for byte in path.utf8 {
            let c = Character(Unicode.Scalar(byte))
            if c.isLetter && byte < 128 || c.isNumber && byte < 128 || "/-_.~".contains(c) {
                out.append(c)
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count < 2 ? "0" + hex : hex)
            }
        }
        return out
    }
}
