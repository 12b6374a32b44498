import DistillJSON
import DistillProtocol
import DistillSync

/// The SVG charts `distill/explain` drew for MCP clients, kept as resources they can fetch.
///
/// Shared by every session of the daemon (a chart's URI stays good on another connection), and
/// bounded: the oldest charts go once `capacity` are held.
final class ChartStore: Sendable {
    struct Chart: Sendable {
        let uri: String
        let name: String
        let description: String
        let svg: String
    }

    static let scheme = "distilld://charts/"
    let capacity: Int
    private let state = Mutex<(next: Int, charts: [Chart])>((1, []))

    init(capacity: Int = 64) { self.capacity = capacity }

    /// Keeps the charts of one explain result (`{"contributions": {student: svg}, "temperature": svg}`)
    /// and returns MCP resource links to them.
    func add(_ charts: JSON?) -> [JSON] {
        guard let charts else { return [] }
        var drawn: [(file: String, description: String, svg: String)] = []
        for (student, svg) in charts["contributions"]?.members ?? [] {
            guard let text = svg.stringValue else { continue }
            drawn.append(("contributions-\(student).svg", "Which outputs carry \(student)'s KL to the teacher", text))
        }
        if let text = charts["temperature"]?.stringValue {
            drawn.append(("temperature.svg", "KL against temperature, per student", text))
        }
        guard !drawn.isEmpty else { return [] }
        let kept: [Chart] = state.withLock { state in
            let serial = state.next
            state.next += 1
            let new = drawn.map {
                Chart(
                    uri: Self.scheme + "\(serial)/" + ResourceURI.encode($0.file), name: $0.file, description: $0.description, svg: $0.svg)
            }
            state.charts.append(contentsOf: new)
            if state.charts.count > capacity { state.charts.removeFirst(state.charts.count - capacity) }
            return new
        }
        return kept.map {
            [
                "type": "resource_link", "uri": JSON($0.uri), "name": JSON($0.name), "description": JSON($0.description),
                "mimeType": "image/svg+xml",
            ]
        }
    }

    func chart(_ uri: String) -> Chart? { state.withLock { $0.charts.first { $0.uri == uri } } }

    var all: [Chart] { state.withLock { $0.charts } }
}

/// `distilld://` URIs: a loaded entry is `distilld://teacher/NAME` (also `dataset`, `model`),
/// with the name percent-encoded beyond the URI's unreserved characters.
enum ResourceURI {
    static let scheme = "distilld://"
    static let entryTypes = ["teacher", "dataset", "model"]

    static func entry(_ type: String, _ name: String) -> String { scheme + type + "/" + encode(name) }

    /// The type and name a loaded entry's URI names, or nil.
    static func parseEntry(_ uri: String) -> (type: String, name: String)? {
        guard uri.hasPrefix(scheme) else { return nil }
        let rest = uri.dropFirst(scheme.count)
        guard let slash = rest.firstIndex(of: "/") else { return nil }
        let type = String(rest[..<slash])
        guard entryTypes.contains(type), let name = decode(String(rest[rest.index(after: slash)...])), !name.isEmpty else {
            return nil
        }
        return (type, name)
    }

    static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            let c = Character(Unicode.Scalar(byte))
            if byte < 0x80 && (c.isLetter || c.isNumber || "-._~".contains(c)) {
                out.append(c)
            } else {
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }

    static func decode(_ text: String) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            else { return nil }
            bytes.append(value)
        }
        return String(validating: bytes, as: UTF8.self)
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
