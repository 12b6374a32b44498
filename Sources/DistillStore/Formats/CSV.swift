/// An RFC 4180 reader: fields separated by the delimiter, records by LF or CRLF;
/// a field that starts with a double quote is quoted, may hold delimiters and
/// newlines, and spells a quote as two quotes. A quote inside an unquoted field,
/// anything but a delimiter or newline after a closing quote, or a quote left open
/// at the end of the file is a `.csvQuoting` error naming the line. Empty lines
/// are skipped.
public enum CSV {
    public struct Record: Sendable, Equatable {
        /// 1-based line where the record starts.
        public let line: Int
        public let fields: [String]

        /// Refuses a record with more or fewer fields than the header row, naming its line.
        func requireWidth(of header: Record, path: String) throws {
            guard fields.count != header.fields.count else { return }
            throw fileError(
                .badLine, path, line: line, numbers: ["expected": header.fields.count, "actual": fields.count],
                "the record has \(fields.count) fields where the header has \(header.fields.count)")
        }
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer, delimiter: UInt8 = 0x2C, path: String) throws -> [Record] {
        var records: [Record] = []
        var fields: [String] = []
        var field: [UInt8] = []
        var line = 1
        var recordLine = 1
        var i = 0
        let n = bytes.count
        let quote: UInt8 = 0x22
        var fieldStarted = false  // whether the current record has any content

        func endRecord() {
            if fieldStarted || !fields.isEmpty {
                fields.append(String(decoding: field, as: UTF8.self))
                records.append(Record(line: recordLine, fields: fields))
            }
            fields = []
            field = []
            fieldStarted = false
        }

        while i < n {
            let c = bytes[i]
            if c == quote && field.isEmpty {
                // Quoted field.
                let openLine = line
                fieldStarted = true
                i += 1
                var closed = false
                while i < n {
                    let d = bytes[i]
                    if d == quote {
                        if i + 1 < n, bytes[i + 1] == quote {
                            field.append(quote)
                            i += 2
                            continue
                        }
                        closed = true
                        i += 1
                        break
                    }
                    if d == 0x0A { line += 1 }
                    field.append(d)
                    i += 1
                }
                guard closed else {
                    throw fileError(
                        .csvQuoting, path, line: openLine, "the quoted field that opens on line \(openLine) is never closed")
                }
                if i < n {
                    let d = bytes[i]
                    let atCRLF = d == 0x0D && i + 1 < n && bytes[i + 1] == 0x0A
                    guard d == delimiter || d == 0x0A || atCRLF else {
                        throw fileError(
                            .csvQuoting, path, line: line,
                            "unexpected '\(String(UnicodeScalar(d)))' after a closing quote (a quote inside a quoted field is written as two quotes)"
                        )
                    }
                }
                continue
            }
            switch c {
            case delimiter:
                fields.append(String(decoding: field, as: UTF8.self))
                field = []
                fieldStarted = true
                i += 1
            case 0x0A:
                if field.last == 0x0D { field.removeLast() }
                endRecord()
                line += 1
                recordLine = line
                i += 1
            case 0x0D where i + 1 < n && bytes[i + 1] == 0x0A:
                endRecord()
                line += 1
                i += 2
                recordLine = line
            case quote:
                throw fileError(
                    .csvQuoting, path, line: line,
                    "a quote inside an unquoted field (field \(fields.count + 1)); quote the whole field and double the quote")
            default:
                field.append(c)
                fieldStarted = true
                i += 1
            }
        }
        endRecord()
        return records
    }
}
