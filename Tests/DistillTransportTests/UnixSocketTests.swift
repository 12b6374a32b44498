import Foundation
import Testing

@testable import DistillTransport

/// What `UnixSocket.listen` may replace and where, and which sockets `checkSafeToDial` accepts.
final class UnixSocketTests {
    let dir: String

    init() throws {
        dir = NSTemporaryDirectory() + "unixsocket-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    @Test func listenNeverReplacesAFile() throws {
        let path = dir + "/d.sock"
        try "precious".write(toFile: path, atomically: false, encoding: .utf8)
        let error = #expect(throws: SystemError.self) { try UnixSocket.listen(path: path) }
        #expect(error?.detail.contains("not a socket") == true)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "precious")
    }

    @Test func listenReplacesAStaleSocketAndRefusesALiveOne() throws {
        let path = dir + "/d.sock"
        let first = try UnixSocket.listen(path: path)
        #expect(throws: SystemError.self) { try UnixSocket.listen(path: path) }  // live
        close(first)  // the file stays: stale
        let second = try UnixSocket.listen(path: path)
        close(second)
        #expect(UnixSocket.directory(of: path) == dir && UnixSocket.directory(of: "x.sock") == ".")
    }

    @Test func aDirectoryOthersCanWriteIsRefused() throws {
        chmod(dir, 0o777)
        let error = #expect(throws: SystemError.self) { try UnixSocket.listen(path: dir + "/d.sock") }
        #expect(error?.detail.contains("writable by other users") == true)
        #expect(throws: SystemError.self) { try UnixSocket.checkSafeToDial(dir + "/d.sock") }
        chmod(dir, 0o755)
        let fd = try UnixSocket.listen(path: dir + "/d.sock")
        try UnixSocket.checkSafeToDial(dir + "/d.sock")
        close(fd)
    }

    @Test func dialRefusesWhatIsNotASocketOrNotOurs() throws {
        let file = dir + "/file"
        try "x".write(toFile: file, atomically: false, encoding: .utf8)
        #expect(throws: SystemError.self) { try UnixSocket.checkSafeToDial(file) }
        try UnixSocket.checkSafeToDial(dir + "/absent.sock")  // nothing there: nothing to refuse
        guard getuid() == 0 else { return }  // giving a file away needs root
        let fd = try UnixSocket.listen(path: dir + "/d.sock")
        defer { close(fd) }
        chown(dir + "/d.sock", 65534, 65534)
        let error = #expect(throws: SystemError.self) { try UnixSocket.checkSafeToDial(dir + "/d.sock") }
        #expect(error?.detail.contains("owned by uid 65534") == true)
    }
}
