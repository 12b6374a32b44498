/// Why a load (or a registry operation) was refused.
///
/// Every error names what it is about: the file (`file`), the 1-based line
/// (`line`, for line-oriented formats) or the tensor (`tensor`, for
/// safetensors). `numbers` carries extra counts, e.g. `nan`, `posInf`,
/// `negInf` for `.nonFinite`, `expected`/`actual` for size mismatches,
/// `budget`/`needed`/`inUse` for `.budgetExceeded`.
///
/// A thrown `StoreError` never leaves the registry changed.
public struct StoreError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable, CaseIterable {
        case notFound, unreadable, truncated, malformedHeader, badOffsets, unsupportedDtype,
            shapeMismatch, nonFinite, indexOutOfRange, badLine, duplicateId, csvQuoting,
            budgetExceeded, nameExists, unknownName, unknownFormat, invalidPath, fileChanged, tooLarge,
            invalidUTF8, duplicateIndex,
            /// A format or options were given with a builtin, which has no file.
            notAFile
    }

    public let code: Code
    /// A complete sentence naming the file and the line or tensor.
    public let message: String
    public let file: String?
    public let line: Int?
    public let tensor: String?
    /// The request member at fault, relative to the request's params ("path",
    /// "options.vocabulary"), when the error is about the request rather than a file.
    public let field: String?
    public let numbers: [String: Int]

    public init(
        _ code: Code, _ message: String, file: String? = nil, line: Int? = nil, tensor: String? = nil,
        field: String? = nil, numbers: [String: Int] = [:]
    ) {
        self.field = field
        self.code = code
        self.message = message
        self.file = file
        self.line = line
        self.tensor = tensor
        self.numbers = numbers
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// Shorthand for errors about a file, prefixing the message with the file (and line/tensor).
func fileError(
    _ code: StoreError.Code, _ file: String, line: Int? = nil, tensor: String? = nil, numbers: [String: Int] = [:],
    _ message: String
) -> StoreError {
    var prefix = file
    if let line { prefix += ":\(line)" }
    if let tensor { prefix += " tensor '\(tensor)'" }
    return StoreError(code, "\(prefix): \(message)", file: file, line: line, tensor: tensor, numbers: numbers)
}
