/// How messages are delimited on a stream.
public enum Framing: String, Sendable {
    /// LSP's base protocol: `Content-Length: N\r\n\r\n` then N bytes of UTF-8 JSON.
    case contentLength = "content-length"
    /// One JSON text per line, for scripts.
    case lines
}

/// A framing problem. The reader keeps going from the next message wherever
/// the framing allows; the server answers each of these with an error reply.
public struct FramingError: Error, Equatable, Sendable {
    public enum Kind: Sendable { case badHeader, tooLarge }
    public let kind: Kind
    public let message: String
}

public enum FrameEvent: Equatable, Sendable {
    case message([UInt8])
    case error(FramingError)
}

/// Splits a byte stream into message bodies. Feed it bytes in pieces of any size
/// (one byte at a time works); it decides the framing from the first
/// non-blank byte after an optional UTF-8 byte-order mark: `{` or `[` means one
/// JSON per line, anything else a header.
public struct MessageFramer: Sendable {
    public private(set) var framing: Framing?
    public let maxMessageBytes: Int
    /// Headers longer than this are refused: a real header is a few dozen bytes.
    public static let maxHeaderBytes = 8192

    private var buffer: [UInt8] = []
    private var start = 0
    private var state: State = .header
    /// How far the last unfinished search for a line or header end got, and from which
    /// `start`: the bytes in between hold no end. Without it every read rescanned the
    /// whole partial message, which made a long line cost time quadratic in its length.
    private var searched = (start: 0, end: 0)
    /// Bytes examined while looking for a line or header end, for tests that check
    /// the search stays linear in the input however it is chunked.
    private(set) var bytesSearched = 0
    /// Bytes of a UTF-8 byte-order mark matched at the very start of the stream.
    private var bomMatched = 0
    private var leadChecked = false
    private static let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]

    private enum State: Equatable, Sendable {
        case header
        case body(length: Int)
        /// Throwing away the rest of an oversized message.
        case discard(remaining: Int)
        /// Lines mode: throwing away the rest of an oversized line.
        case discardLine
        /// After a header we cannot trust: scan for the next `Content-Length`.
        case resync
    }

    public init(maxMessageBytes: Int = 256 << 20, framing: Framing? = nil) {
        self.maxMessageBytes = maxMessageBytes
        self.framing = framing
    }

    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> [FrameEvent] {
        var events: [FrameEvent] = []
        var input = bytes[...]
        if framing == nil, !leadChecked {
            // Some editors and Windows tools start a stream with a byte-order mark; it
            // must not decide the framing. The mark may arrive split across reads.
            var i = input.startIndex
            while i < input.endIndex, bomMatched < 3, input[i] == Self.byteOrderMark[bomMatched] {
                bomMatched += 1
                i += 1
            }
            if bomMatched == 3 {
                leadChecked = true
                input = input[i...]
            } else if i == input.endIndex {
                return []
            } else {
                // Not a mark after all: the bytes held back belong to the stream.
                leadChecked = true
                if bomMatched > 0 {
                    let replay = Array(Self.byteOrderMark.prefix(bomMatched)) + Array(input[i...])
                    bomMatched = 0
                    return replay.withUnsafeBytes { feed($0) }
                }
            }
        }
        if framing == nil {
            guard let first = input.firstIndex(where: { !Self.isBlank($0) }) else { return [] }
            framing = (input[first] == UInt8(ascii: "{") || input[first] == UInt8(ascii: "[")) ? .lines : .contentLength
            input = input[first...]
        }
        // Large bodies skip the buffer-then-copy dance when possible.
        if case .discard(let remaining) = state {
            let n = min(remaining, input.count)
            input = input.dropFirst(n)
            state = remaining == n ? .header : .discard(remaining: remaining - n)
        }
        buffer.append(contentsOf: input)
        while step(&events) {}
        compact()
        return events
    }

    public mutating func feed(_ bytes: [UInt8]) -> [FrameEvent] {
        bytes.withUnsafeBytes { feed($0) }
    }

    /// End of input: a final line without its newline is still a message; a partial
    /// framed message is reported as an error.
    public mutating func finish() -> [FrameEvent] {
        if framing == nil, !leadChecked, bomMatched > 0 {
            // The stream ended inside what might have been a byte-order mark: those bytes
            // are the whole stream and are judged like any other.
            leadChecked = true
            let held = Array(Self.byteOrderMark.prefix(bomMatched))
            bomMatched = 0
            return feed(held) + finish()
        }
        defer {
            buffer.removeAll()
            start = 0
            searched = (0, 0)
        }
        let rest = buffer[start...]
        switch (framing, state) {
        case (.lines, .header):
            let line = trimLine(rest)
            return line.isEmpty ? [] : [.message(Array(line))]
        case (.contentLength, .body(let length)):
            return [
                .error(
                    FramingError(kind: .badHeader, message: "input ended \(length - rest.count) bytes short of a \(length)-byte message"))
            ]
        case (.contentLength, .header) where !rest.allSatisfy(Self.isBlank):
            return [.error(FramingError(kind: .badHeader, message: "input ended inside a message header"))]
        default:
            return []
        }
    }

    // MARK: - Steps

    /// Consumes at most one event's worth of buffered input; false when it needs more bytes.
    private mutating func step(_ events: inout [FrameEvent]) -> Bool {
        switch framing! {
        case .lines: return stepLines(&events)
        case .contentLength: return stepFramed(&events)
        }
    }

    private mutating func stepLines(_ events: inout [FrameEvent]) -> Bool {
        let from = searched.start == start ? max(start, searched.end) : start
        let newline = buffer[from...].firstIndex(of: UInt8(ascii: "\n"))
        bytesSearched += (newline ?? buffer.count) - from
        searched = (start, newline == nil ? buffer.count : 0)
        if state == .discardLine {
            guard let newline else { start = buffer.count; return false }
            start = newline + 1
            state = .header
            return true
        }
        guard let newline else {
            if buffer.count - start > maxMessageBytes {
                events.append(.error(FramingError(kind: .tooLarge, message: "line exceeds the \(maxMessageBytes)-byte message limit")))
                start = buffer.count
                state = .discardLine
            }
            return false
        }
        // The limit counts the bytes before "\n", blanks and "\r" included, as the check above
        // must while the line is still arriving: a line is refused whatever its pieces.
        let length = newline - start
        let line = trimLine(buffer[start..<newline])
        start = newline + 1
        if length > maxMessageBytes {
            events.append(
                .error(
                    FramingError(kind: .tooLarge, message: "line of \(length) bytes exceeds the \(maxMessageBytes)-byte message limit"))
            )
        } else if !line.isEmpty {
            events.append(.message(Array(line)))
        }
        return true
    }

    private mutating func stepFramed(_ events: inout [FrameEvent]) -> Bool {
        switch state {
        case .header:
            // Blank bytes between messages are tolerated.
            while start < buffer.count, Self.isBlank(buffer[start]) { start += 1 }
            guard let (end, next) = headerEnd() else {
                if buffer.count - start > Self.maxHeaderBytes {
                    events.append(.error(FramingError(kind: .badHeader, message: "header longer than \(Self.maxHeaderBytes) bytes")))
                    start += 1
                    state = .resync
                    return true
                }
                return false
            }
            let header = buffer[start..<end]
            start = next
            switch parseHeader(header) {
            case .success(let (length, digits)):
                if length > maxMessageBytes {
                    // A length past Int.max cannot be skipped exactly; skipping Int.max bytes
                    // is the same in practice: the rest of the stream.
                    events.append(
                        .error(
                            FramingError(kind: .tooLarge, message: "message of \(digits) bytes exceeds the \(maxMessageBytes)-byte limit")))
                    state = .discard(remaining: length)
                } else {
                    state = .body(length: length)
                }
            case .failure(let error):
                events.append(.error(error.error))
                if let length = error.deliverableLength, length <= maxMessageBytes {
                    // Junk before a valid Content-Length: the body itself is intact.
                    state = .body(length: length)
                } else if let length = error.skippableLength ?? error.deliverableLength {
                    state = .discard(remaining: length)
                } else {
                    state = .resync
                }
            }
            return true
        case .body(let length):
            guard buffer.count - start >= length else { return false }
            events.append(.message(Array(buffer[start..<start + length])))
            start += length
            state = .header
            return true
        case .discard(let remaining):
            let n = min(remaining, buffer.count - start)
            start += n
            if n == remaining { state = .header; return true }
            state = .discard(remaining: remaining - n)
            return false
        case .resync:
            if let found = find(Self.contentLengthName, from: start, caseInsensitive: true) {
                start = found
                state = .header
                return true
            }
            // Keep a tail long enough to hold a split "Content-Length".
            start = max(start, buffer.count - Self.contentLengthName.count)
            return false
        case .discardLine:
            return false
        }
    }

    private static let contentLengthName = Array("content-length".utf8)

    /// The end of the header block: `\r\n\r\n`, or `\n\n` from lenient clients.
    private mutating func headerEnd() -> (end: Int, next: Int)? {
        // The last two bytes seen may begin an end that the next read completes.
        let from = searched.start == start ? max(start, searched.end - 2) : start
        var i = from
        defer { bytesSearched += i - from }
        while i < buffer.count {
            if buffer[i] == UInt8(ascii: "\n") {
                if i + 1 < buffer.count, buffer[i + 1] == UInt8(ascii: "\n") { return (i, i + 2) }
                if i + 2 < buffer.count, buffer[i + 1] == UInt8(ascii: "\r"), buffer[i + 2] == UInt8(ascii: "\n") {
                    return (i, i + 3)
                }
            }
            i += 1
        }
        searched = (start, buffer.count)
        return nil
    }

    /// The length a header announces, as a number (Int.max for any larger value) and as
    /// its decimal digits without leading zeros (for messages).
    private func parseHeader(_ header: ArraySlice<UInt8>) -> Result<(Int, String), HeaderError> {
        var length: (Int, String)? = nil
        var problem: String? = nil
        var junk: String? = nil
        for rawLine in header.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            let line = trimLine(rawLine)
            if line.isEmpty { continue }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
                junk = junk ?? "header line without a colon: \"\(Self.printable(line))\""
                continue
            }
            let name = String(decoding: line[..<colon], as: UTF8.self).trimmingBlanks().lowercased()
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingBlanks()
            switch name {
            case "content-length":
                guard !value.isEmpty, value.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
                    return .failure(
                        HeaderError(
                            FramingError(kind: .badHeader, message: "Content-Length is not a non-negative integer: \"\(value)\""),
                            skippable: nil))
                }
                // However many digits: any length above the limit is "too large", not malformed.
                let significant = value.drop(while: { $0 == "0" })
                let digits = significant.isEmpty ? "0" : String(significant)
                if let (_, seen) = length, seen != digits {
                    // Which one is right cannot be known, so the body cannot be found either.
                    return .failure(
                        HeaderError(
                            FramingError(kind: .badHeader, message: "conflicting Content-Length headers: \(seen) and \(digits)"),
                            skippable: nil))
                }
                length = (Int(digits) ?? Int.max, digits)
            case "content-type":
                for parameter in value.lowercased().split(separator: ";").dropFirst() {
                    let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: " \"") }
                    guard pair.count == 2, pair[0] == "charset" else { continue }
                    if pair[1] != "utf-8" && pair[1] != "utf8" {
                        problem = problem ?? "unsupported charset \"\(pair[1])\"; only utf-8 is accepted"
                    }
                }
            default:
                continue  // unknown headers are ignored
            }
        }
        guard let length else {
            return .failure(
                HeaderError(FramingError(kind: .badHeader, message: problem ?? junk ?? "header has no Content-Length"), skippable: nil))
        }
        if let problem {
            return .failure(HeaderError(FramingError(kind: .badHeader, message: problem), skippable: length.0))
        }
        if let junk {
            return .failure(HeaderError(FramingError(kind: .badHeader, message: junk), deliverable: length.0))
        }
        return .success(length)
    }

    // MARK: - Helpers

    private func find(_ needle: [UInt8], from: Int, caseInsensitive: Bool) -> Int? {
        guard buffer.count - from >= needle.count else { return nil }
        var i = from
        while i + needle.count <= buffer.count {
            var j = 0
            while j < needle.count {
                var b = buffer[i + j]
                if caseInsensitive, b >= 65, b <= 90 { b += 32 }
                if b != needle[j] { break }
                j += 1
            }
            if j == needle.count { return i }
            i += 1
        }
        return nil
    }

    private mutating func compact() {
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 20)
            start = 0
            searched = (0, 0)
        } else if start > 65536 && start > buffer.count / 2 {
            buffer.removeFirst(start)
            searched = searched.start == start ? (0, searched.end - start) : (0, 0)
            start = 0
        }
    }

    private func trimLine(_ s: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var s = s
        while let last = s.last, Self.isBlank(last) { s = s.dropLast() }
        while let first = s.first, Self.isBlank(first) { s = s.dropFirst() }
        return s
    }

    static func isBlank(_ b: UInt8) -> Bool { b == 32 || b == 9 || b == 10 || b == 13 }

    static func printable(_ s: ArraySlice<UInt8>) -> String {
        String(decoding: s.prefix(60), as: UTF8.self).unicodeScalars.map { $0.value < 32 ? "?" : String($0) }.joined()
    }

    /// The bytes that go on the wire for one message body.
    public static func frame(_ body: [UInt8], as framing: Framing) -> [UInt8] {
        switch framing {
        case .contentLength:
            return Array("Content-Length: \(body.count)\r\n\r\n".utf8) + body
        case .lines:
            // jansson's compact output never contains a raw newline.
            return body + [UInt8(ascii: "\n")]
        }
    }
}

private struct HeaderError: Error {
    let error: FramingError
    /// When the length is known but the body cannot be read (a wrong charset), it is skipped exactly.
    let skippableLength: Int?
    /// When only junk lines spoil an otherwise valid header, the body is still delivered.
    let deliverableLength: Int?
    init(_ error: FramingError, skippable: Int? = nil, deliverable: Int? = nil) {
        self.error = error
        self.skippableLength = skippable
        self.deliverableLength = deliverable
    }
}

extension String {
    func trimmingBlanks() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }

    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String { String(self).trimmingCharacters(in: set) }
}
