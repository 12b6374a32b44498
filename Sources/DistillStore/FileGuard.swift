import Foundation

/// Refuses results computed from a mapped file that was truncated while it was read.
///
/// `run` keeps, for the calling thread, a list of the `MappedFile`s opened or used
/// (`TeacherEntry.checkFiles`) during `body`. A read past the end of a file
/// truncated meanwhile sees zeros instead of killing the process (see
/// `MappedFile`); when `body` ends, returning or throwing, any such file, or
/// any file changed meanwhile (rewritten in place during the reads), makes `run`
/// throw `.fileChanged` naming it, so what was computed from zeros or from a mix
/// of old and new data is never returned.
///
/// - Important: only maps opened or checked on the thread that called `run`
///   are tracked; work that fans out to other threads still reads through maps
///   that were resolved on this one.
public enum FileGuard {
    final class Log {
        var maps: [MappedFile] = []
    }

    static let key = "distill.FileGuard.log"

    public static func run<R>(_ body: () throws -> R) throws -> R {
        let thread = Thread.current.threadDictionary
        let outer = thread[key] as? Log
        let log = Log()
        thread[key] = log
        defer {
            thread[key] = outer
            outer?.maps += log.maps
        }
        let result: Result<R, Error>
        do { result = .success(try body()) } catch { result = .failure(error) }
        // A truncation, or a rewrite in place while `body` read (no fault, but mixed data).
        for map in log.maps { try map.checkUnchanged() }
        return try result.get()
    }

    /// Records that the current `run` (if any) reads through `map`.
    static func note(_ map: MappedFile) {
        guard let log = Thread.current.threadDictionary[key] as? Log else { return }
        if !log.maps.contains(where: { $0 === map }) { log.maps.append(map) }
    }
}
