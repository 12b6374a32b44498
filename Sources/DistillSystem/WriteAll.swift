#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writes every byte of `bytes` to `fd`, going on after a short write and retrying a write a
/// signal interrupted.
///
/// - Returns: 0, or the `errno` of the write that failed.
public func writeAll(to fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32 {
    var offset = 0
    while offset < bytes.count {
        let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if n < 0 {
            if errno == EINTR { continue }
            return errno
        }
        offset += n
    }
    return 0
}

/// The text of an `errno` value.
public func errnoText(_ code: Int32) -> String { String(cString: strerror(code)) }
