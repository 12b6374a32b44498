import DistillStore

/// Reads a GGUF header front to back, refusing anything that would reach past the file's end.
///
/// Every read names the field it is for, so that a short or lying file is reported as "`field`
/// at byte N needs k bytes, but the file ends at byte M", never read out of bounds. Counts are
/// compared with the bytes left before anything is allocated for them.
struct GGUFCursor {
    let base: UnsafeRawPointer
    let size: Int
    let path: String
    var offset = 0

    init(base: UnsafeRawPointer, size: Int, path: String) {
        self.base = base
        self.size = size
        self.path = path
    }

    var remaining: Int { size - offset }

    /// Advances past `count` bytes for `field`, returning where they start.
    mutating func take(_ count: Int, _ field: @autoclosure () -> String) throws -> UnsafeRawPointer {
        guard count <= remaining else {
            throw ggufError(
                .truncated, path, numbers: ["offset": offset, "size": size],
                "\(field()) at byte \(offset) needs \(count) bytes, but the file ends at byte \(size): it is truncated")
        }
        let p = base + offset
        offset += count
        return p
    }

    mutating func load<T: FixedWidthInteger>(_: T.Type, _ field: @autoclosure () -> String) throws -> T {
        T(littleEndian: try take(MemoryLayout<T>.size, field()).loadUnaligned(as: T.self))
    }

    /// A GGUF string: a uint64 byte length, then that many bytes of UTF-8 (no terminator).
    mutating func string(_ field: @autoclosure () -> String) throws -> String {
        let at = offset
        let length = try load(UInt64.self, "the length of \(field())")
        guard length <= UInt64(remaining) else {
            throw ggufError(
                .truncated, path, numbers: ["offset": at, "length": Int(clamping: length), "size": size],
                "\(field()) at byte \(at) claims \(length) bytes, but only \(remaining) remain in the file: "
                    + "the length is wrong or the file is truncated")
        }
        let bytes = UnsafeRawBufferPointer(start: try take(Int(length), field()), count: Int(length))
        guard let s = String(validating: bytes, as: UTF8.self) else {
            throw ggufError(
                .malformedHeader, path, numbers: ["offset": at], "\(field()) at byte \(at) is not valid UTF-8")
        }
        return s
    }

    /// Checks that `count` items of at least `minimumBytes` each can fit in what is left, so that
    /// a lying count (2^60 tensors) is refused before anything is reserved for it.
    func checkCount(_ count: UInt64, minimumBytes: Int, at: Int, _ field: @autoclosure () -> String) throws {
        guard count <= UInt64(remaining / minimumBytes) else {
            throw ggufError(
                .truncated, path, numbers: ["offset": at, "count": Int(clamping: count), "size": size],
                "\(field()) at byte \(at) is \(count), but \(count) entries need at least \(minimumBytes) bytes each "
                    + "and only \(remaining) bytes remain: the count is wrong or the file is truncated")
        }
    }
}

/// A `StoreError` about a GGUF file, its message prefixed with the file (and tensor).
func ggufError(
    _ code: StoreError.Code, _ path: String, tensor: String? = nil, numbers: [String: Int] = [:], _ message: String
) -> StoreError {
    var prefix = path
    if let tensor { prefix += " tensor '\(tensor)'" }
    return StoreError(code, "\(prefix): \(message)", file: path, tensor: tensor, numbers: numbers)
}
