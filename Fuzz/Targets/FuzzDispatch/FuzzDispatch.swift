import DistillJSON
import DistillTransport
import FuzzSupport

@testable import DistillServer

#if canImport(Glibc)
    import Glibc
#endif

/// The whole request path in process: framing, the JSON envelope, batches, dispatch
/// and every method of MethodTable with its params. Each input is one client's byte
/// stream, served start to end by a fresh server whose replies go to /dev/null; the
/// store methods read small fixtures in a scratch directory (the working directory).
///
/// Inputs that could name a file outside the scratch directory (an absolute path,
/// `..`, an escaped slash) are skipped: `distill/explain` writes charts where told.
let scratch: String = {
    let dir = makeScratchDirectory()
    precondition(chdir(dir) == 0)
    let logits: [Float] = [2, 1, 0.5, -1, 0.25, 3]
    writeFile(
        "t.safetensors",
        safetensors([("logits", "F32", [2, 3], float32Bytes(logits))], metadata: #"{"ids":"[\"a\",\"b\"]"}"#))
    writeFile(
        "p.jsonl",
        Array(
            """
            {"id":"a","full":"The cat sat on the mat.","simplified":"The cat sat.","label":"x"}
            {"id":"b","full":"It rained all day long.","simplified":"It rained.","label":2}

            """.utf8))
    writeFile("p.csv", Array("id,full,simplified,target\na,\"One, two\",One,x\nb,Three,Three,\n".utf8))
    writeFile("in.txt", Array("first input\n\nsecond input\n".utf8))
    writeFile("vocab.json", Array(#"["x","y","z"]"#.utf8))
    return dir
}()
let input = ScratchFile(name: "fuzz.stream")
let devNull = open("/dev/null", O_WRONLY | O_CLOEXEC)

@_cdecl("FuzzDispatch_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in fuzz(data!, size) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = scratch
    let bytes = UnsafeBufferPointer(start: data, count: size)
    for needle in ["\"/", "..", "\\/", "\\u002", "~"] where contains(bytes, Array(needle.utf8)) { return 0 }
    input.write(UnsafeRawBufferPointer(start: data, count: size))
    precondition(lseek(input.fd, 0, SEEK_SET) == 0)
    var options = ServerOptions()
    options.maxMessageBytes = 1 << 16
    options.logLevel = .error
    options.progressThreshold = 1e9
    options.memoryBudget = 64 << 20
    let server = DistillServer(options: options)
    _ = server.serve(Connection(input: input.fd, output: devNull, maxMessageBytes: options.maxMessageBytes))
    return 0
}

private func contains(_ haystack: UnsafeBufferPointer<UInt8>, _ needle: [UInt8]) -> Bool {
    guard haystack.count >= needle.count else { return false }
    var i = 0
    while i + needle.count <= haystack.count {
        if haystack[i] == needle[0] && haystack[i..<i + needle.count].elementsEqual(needle) { return true }
        i += 1
    }
    return false
}
