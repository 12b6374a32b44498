import Foundation

/// The span of a request's use of files: refuses results computed from a mapped file that
/// was truncated or rewritten meanwhile, and keeps the anonymous entries the request loaded.
///
/// `run` keeps, for the calling thread, a log of the `MappedFile`s opened or used
/// (`TeacherEntry.checkFiles`) during `body`. A read past the end of a file
/// truncated meanwhile sees zeros instead of killing the process (see
/// `MappedFile`); when `body` ends, returning or throwing, any such file, or
/// any file changed meanwhile (rewritten in place during the reads), makes `run`
/// throw `.fileChanged` naming it, so what was computed from zeros or from a mix
/// of old and new data is never returned.
///
/// The log also holds the anonymous entries loaded during `body` (`keep`), so that they,
/// and the budget they count against, live until the outermost `run` ends: the end of the
/// request. Runs nest: an inner run's log joins the outer one's when it ends.
///
/// - Important: only maps opened or checked on the thread that called `run`
///   are tracked; work that fans out to other threads still reads through maps
///   that were resolved on this one.
public enum FileGuard {
    final class Log {
        var maps: [MappedFile] = []
        /// Paths opened (`openForReading`), in order, repeats included.
        var opened: [String] = []
        var kept: [AnyObject] = []
    }

    static let key = "distill.FileGuard.log"

    public static func run<R>(_ body: () throws -> R) throws -> R {
        let thread = Thread.current.threadDictionary
        let outer = thread[key] as? Log
        let log = Log()
        thread[key] = log
        defer {
            thread[key] = outer
            if let outer {
                outer.maps += log.maps.filter { map in !outer.maps.contains { $0 === map } }
                outer.opened += log.opened
                outer.kept += log.kept
            }
        }
        let result: Result<R, Error>
        do { result = .success(try body()) } catch { result = .failure(error) }
        // A truncation, or a rewrite in place while `body` read (no fault, but mixed data).
        for map in log.maps { try map.checkUnchanged() }
        return try result.get()
    }

    static var current: Log? { Thread.current.threadDictionary[key] as? Log }

    /// Records that the current `run` (if any) reads through `map`.
    static func note(_ map: MappedFile) {
        guard let log = current else { return }
        if !log.maps.contains(where: { $0 === map }) { log.maps.append(map) }
    }

    /// Records that the current `run` (if any) opened `path`: tests count opens with it.
    static func noteOpen(_ path: String) {
        current?.opened.append(path)
    }

    /// Keeps `object` alive until the outermost `run` on this thread ends (nothing
    /// outside a run).
    static func keep(_ object: AnyObject) {
        current?.kept.append(object)
    }
}
