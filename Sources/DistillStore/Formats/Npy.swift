import DistillTensor

/// A NumPy `.npy` file (format versions 1.0, 2.0 and 3.0), memory-mapped.
///
/// Supported element types: `<f4`, `<f2`, `<f8`, `<i4`, `<i8`, `|u1`, `|b1`
/// (`=` is accepted for little-endian on this platform); C order only.
/// The header is a Python dict literal, parsed here (it is not JSON).
public struct NpyArray: MappedFileFormat, Sendable {
    public let tensor: Tensor
    public let version: (major: Int, minor: Int)
    /// The dtype as written in the header ("<f4").
    public let descr: String
    /// Whether the tensor points into the file map (false: an aligned copy).
    public let mapped: Bool
    public let map: MappedFile

    static let descrs: [String: ScalarType] = [
        "f4": .float32, "f2": .float16, "f8": .float64, "i4": .int32, "i8": .int64, "u1": .uint8, "b1": .bool,
    ]

    public init(map: MappedFile) throws {
        self.map = map
        let path = map.path
        let size = map.size
        guard size >= 10, let base = map.base else {
            throw fileError(.truncated, path, numbers: ["size": size], "the file is \(size) bytes, too short for a .npy header")
        }
        let bytes = map.bytes
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
        guard Array(bytes[0..<6]) == magic else {
            throw fileError(.malformedHeader, path, "not a .npy file (no \\x93NUMPY magic)")
        }
        let major = Int(bytes[6])
        let minor = Int(bytes[7])
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(base.loadUnaligned(fromByteOffset: 8, as: UInt16.self).littleEndian)
            headerStart = 10
        case 2, 3:
            guard size >= 12 else {
                throw fileError(.truncated, path, "the file is \(size) bytes, too short for a version \(major) header")
            }
            headerLength = Int(base.loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian)
            headerStart = 12
        default:
            throw fileError(.malformedHeader, path, "unsupported .npy format version \(major).\(minor)")
        }
        guard headerStart + headerLength <= size else {
            throw fileError(
                .truncated, path, numbers: ["headerLength": headerLength, "size": size],
                "the header length \(headerLength) runs past the end of the file (\(size) bytes)")
        }
        let text = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        let dict: [String: PyLiteral]
        do {
            guard case .dict(let d) = try PyLiteralParser.parse(text) else {
                throw fileError(.malformedHeader, path, "the header is not a Python dict literal")
            }
            dict = d
        } catch let e as PyLiteralParser.Failure {
            throw fileError(.malformedHeader, path, "the header is not a Python literal: \(e.message) at character \(e.offset)")
        }
        guard case .string(let descr)? = dict["descr"] else {
            throw fileError(.malformedHeader, path, "the header lacks a string 'descr' (structured dtypes are not supported)")
        }
        guard case .bool(let fortran)? = dict["fortran_order"] else {
            throw fileError(.malformedHeader, path, "the header lacks a boolean 'fortran_order'")
        }
        guard case .tuple(let dims)? = dict["shape"] else {
            throw fileError(.malformedHeader, path, "the header lacks a tuple 'shape'")
        }
        var shape: [Int] = []
        for d in dims {
            guard case .int(let v) = d, v >= 0 else {
                throw fileError(.malformedHeader, path, "the shape holds something other than a non-negative integer")
            }
            shape.append(v)
        }
        guard descr.utf8.count == 3, let order = descr.first, let dtype = Self.descrs[String(descr.dropFirst())] else {
            throw fileError(.unsupportedDtype, path, "dtype '\(descr)' is not supported (use <f4, <f2, <f8, <i4, <i8, |u1 or |b1)")
        }
        let single = dtype.byteWidth == 1
        guard order == "<" || order == "=" || (single && order == "|") else {
            throw fileError(.unsupportedDtype, path, "dtype '\(descr)' is big-endian or has no byte order; only little-endian is supported")
        }
        guard !fortran else {
            throw fileError(
                .unsupportedDtype, path,
                "the array is in Fortran order (fortran_order: True); save a C-ordered array (np.ascontiguousarray) instead")
        }
        let dataStart = headerStart + headerLength
        guard let count = Tensor.byteCount(shape: shape, width: dtype.byteWidth) else {
            throw fileError(
                .tooLarge, path,
                "the header's 'shape' \(shape) × \(descr) does not fit in 64 bits: the file is corrupt")
        }
        guard count <= size - dataStart else {
            throw fileError(
                .truncated, path, numbers: ["expected": count, "actual": size - dataStart],
                "the data holds \(size - dataStart) bytes but shape \(shape) × \(descr) needs \(count): the file is truncated")
        }
        var storage = map.storage(offset: dataStart, count: count)
        var mapped = true
        if Int(bitPattern: storage.base) % dtype.byteWidth != 0 {
            storage = TensorStorage(copying: UnsafeRawBufferPointer(start: storage.base, count: count))
            mapped = false
        }
        tensor = try Tensor(storage: storage, dtype: dtype, shape: shape)
        version = (major, minor)
        self.descr = descr
        self.mapped = mapped
    }
}

/// A Python literal as found in a `.npy` header.
enum PyLiteral: Equatable {
    case dict([String: PyLiteral])
    case tuple([PyLiteral])
    case string(String)
    case int(Int)
    case bool(Bool)
    case none
}

/// Parses the subset of Python literal syntax that `.npy` headers use: dicts
/// with string keys, tuples and lists, strings in single or double quotes,
/// integers (including `10L`), True, False, None.
enum PyLiteralParser {
    struct Failure: Error {
        let message: String
        let offset: Int
    }

    static func parse(_ text: String) throws -> PyLiteral {
        var p = Parser(bytes: Array(text.utf8))
        let v = try p.value()
        p.skipSpace()
        guard p.i == p.bytes.count else { throw Failure(message: "unexpected text after the literal", offset: p.i) }
        return v
    }

    struct Parser {
        let bytes: [UInt8]
        var i = 0
        /// Containers open around the current value; bounded so that a hostile header
        /// cannot exhaust the stack (a real header nests two deep).
        var depth = 0
        static let maxDepth = 64

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x09 || bytes[i] == 0x0D { i += 1 }
        }

        func fail(_ m: String) -> Failure { Failure(message: m, offset: i) }

        mutating func value() throws -> PyLiteral {
            skipSpace()
            guard i < bytes.count else { throw fail("unexpected end") }
            let opens = bytes[i] == UInt8(ascii: "{") || bytes[i] == UInt8(ascii: "(") || bytes[i] == UInt8(ascii: "[")
            if opens {
                guard depth < Self.maxDepth else { throw fail("containers nested more than \(Self.maxDepth) deep") }
                depth += 1
            }
            defer { if opens { depth -= 1 } }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1
                var d: [String: PyLiteral] = [:]
                while true {
                    skipSpace()
                    if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
                        i += 1
                        return .dict(d)
                    }
                    guard case .string(let key) = try value() else { throw fail("dict keys must be strings") }
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                    i += 1
                    d[key] = try value()
                    skipSpace()
                    guard i < bytes.count else { throw fail("unterminated dict") }
                    if bytes[i] == UInt8(ascii: ",") {
                        i += 1
                    } else if bytes[i] != UInt8(ascii: "}") {
                        throw fail("expected ',' or '}'")
                    }
                }
            case UInt8(ascii: "("), UInt8(ascii: "["):
                let close = bytes[i] == UInt8(ascii: "(") ? UInt8(ascii: ")") : UInt8(ascii: "]")
                i += 1
                var items: [PyLiteral] = []
                while true {
                    skipSpace()
                    if i < bytes.count, bytes[i] == close {
                        i += 1
                        return .tuple(items)
                    }
                    items.append(try value())
                    skipSpace()
                    guard i < bytes.count else { throw fail("unterminated tuple") }
                    if bytes[i] == UInt8(ascii: ",") {
                        i += 1
                    } else if bytes[i] != close {
                        throw fail("expected ',' or a closing bracket")
                    }
                }
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                let quote = bytes[i]
                i += 1
                var out: [UInt8] = []
                while i < bytes.count, bytes[i] != quote {
                    if bytes[i] == UInt8(ascii: "\\"), i + 1 < bytes.count {
                        i += 1
                    }
                    out.append(bytes[i])
                    i += 1
                }
                guard i < bytes.count else { throw fail("unterminated string") }
                i += 1
                return .string(String(decoding: out, as: UTF8.self))
            default:
                let start = i
                while i < bytes.count,
                    (bytes[i] >= 0x30 && bytes[i] <= 0x39) || (bytes[i] >= 0x41 && bytes[i] <= 0x5A)
                        || (bytes[i] >= 0x61 && bytes[i] <= 0x7A) || bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "_")
                {
                    i += 1
                }
                var word = String(decoding: bytes[start..<i], as: UTF8.self)
                switch word {
                case "True": return .bool(true)
                case "False": return .bool(false)
                case "None": return .none
                default:
                    if word.hasSuffix("L") { word.removeLast() }
                    guard let v = Int(word) else {
                        i = start
                        throw fail("unexpected '\(word.isEmpty ? String(UnicodeScalar(bytes[start])) : word)'")
                    }
                    return .int(v)
                }
            }
        }
    }
}
