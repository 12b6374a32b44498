extension JSON {
    /// About how many bytes jansson allocates while parsing `bytes` into values, from
    /// one pass over the text (measured against jansson 2.14 on glibc, rounded up):
    ///
    ///     48 per `,` (a scalar value and its array slot)    112 per `:` (a member: key, pair, value)
    ///     176 per `[` (an array and its first slots)        240 per `{` (an object and its hash table)
    ///     64 per string, plus its bytes, plus twice the longest string (the lexer's buffer)
    ///
    /// A text of small numbers needs about 20 times its size (`[0,0,...]`), one long
    /// string about 3 times. Commas and colons inside strings are not counted: the
    /// scan follows quotes and escapes.
    public static func parseMemoryEstimate(_ bytes: UnsafeRawBufferPointer) -> Int {
        var commas = 0
        var colons = 0
        var arrays = 0
        var objects = 0
        var strings = 0
        var stringBytes = 0
        var longest = 0
        var inString = false
        var escaped = false
        var stringStart = 0
        for i in 0..<bytes.count {
            let b = bytes[i]
            if inString {
                if escaped {
                    escaped = false
                } else if b == UInt8(ascii: "\\") {
                    escaped = true
                } else if b == UInt8(ascii: "\"") {
                    inString = false
                    stringBytes += i - stringStart
                    longest = max(longest, i - stringStart)
                }
                continue
            }
            switch b {
            case UInt8(ascii: "\""):
                inString = true
                strings += 1
                stringStart = i
            case UInt8(ascii: ","): commas += 1
            case UInt8(ascii: ":"): colons += 1
            case UInt8(ascii: "["): arrays += 1
            case UInt8(ascii: "{"): objects += 1
            default: break
            }
        }
        if inString { stringBytes += bytes.count - stringStart }
        return 48 * (commas + 1) + 112 * colons + 176 * arrays + 240 * objects + 64 * strings + stringBytes + 2 * longest
    }
}
