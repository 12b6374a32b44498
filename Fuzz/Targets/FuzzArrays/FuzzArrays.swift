import DistillJSON
import DistillProtocol
import FuzzSupport

@testable import DistillServer

/// The array decoder of request fields: nested JSON arrays and the binary form
/// `{"dtype", "shape", "data"}` (ArrayDecoding.swift), and base64 alone (Base64.swift).
/// The first byte picks the mode; the rest is a JSON text or a base64 string.
/// Bad input must come back as a `ResponseError` (an invalid-params reply), nothing else.
@_cdecl("FuzzArrays_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in fuzz(data!, size) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzInput(data, size, refusing: ResponseError.self) { control, rest in
        if control & 1 == 1 {
            decodeBase64(rest)
            return
        }
        guard let json = try? JSON.parse(rest) else { return }
        let maxRank = 1 + Int(control >> 1 & 3)
        let tensor = try ArrayDecoding.tensor(Field(json, path: "x"), maxRank: maxRank, integers: control & 8 != 0)
        precondition((1...maxRank).contains(tensor.shape.count), "rank \(tensor.shape.count) outside 1...\(maxRank)")
        precondition(tensor.shape.reduce(1, *) * tensor.dtype.byteWidth == tensor.storage.byteCount, "shape does not match the bytes")
    }
}

private func decodeBase64(_ input: UnsafeRawBufferPointer) {
    guard let length = Base64.decodedLength(input) else { return }
    let out = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 1)
    defer { out.deallocate() }
    if let bad = Base64.decode(input, into: out) {
        precondition(bad >= 0 && bad < input.count, "bad offset \(bad) outside \(input.count)")
    }
}
