import FuzzSupport

@testable import DistillStore

/// The vocabulary reader (Vocabulary.swift): JSON lists, tokenizer.json, {token: id}
/// maps and text. The first byte picks the file name the reader sees (which decides
/// whether JSON that does not parse falls back to text); the rest is the file.
@_cdecl("FuzzVocabulary_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in fuzz(data!, size) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzInput(data, size, refusing: StoreError.self) { control, rest in
        _ = try Vocabulary.read(bytes: rest, path: control & 1 == 0 ? "vocab.json" : "vocab.txt")
    }
}
