/// A part of a request's params, read when the request is read, whose complaint (if any) is
/// raised only when the handler comes to it.
///
/// Params are read on the reading thread, before the loaded names, files and inline arrays they
/// give are resolved; but a method reports the first problem in the order it has always checked
/// its params, and some of those checks need what only the handler has (an unknown teacher is
/// reported before a misspelt loss option that follows it). So every part read after the first
/// such check is kept as a `Deferred`, and the handler unwraps the parts in that same order.
public struct Deferred<Value: Sendable>: Sendable {
    private let result: Result<Value, any Error>

    /// Reads the part now, keeping its error for later.
    public init(_ read: () throws -> Value) {
        result = Result(catching: read)
    }

    /// The part, or the complaint found while reading it.
    public func get() throws -> Value { try result.get() }

    /// The part, or nil when it could not be read: for the names a request's order waits on,
    /// where a part that fails adds none.
    public var value: Value? { try? result.get() }
}
