import DistillModels
import DistillStore
import FuzzSupport

/// The GGUF reader (GGUFFile: header, metadata, tensor records), the float32 conversion of every
/// tensor it hands out (each byte of each result read), and, when the control byte's low bit is
/// set, the model assembly over it (GGUFModel: configuration, tokenizer, names, conversion).
/// A bad file must be refused with a `StoreError`; the model assembly may also refuse with a
/// `ModelError` (an architecture distilld does not run is one).
let file = ScratchFile(name: "fuzz.gguf")

@_cdecl("FuzzGGUF_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in fuzz(data!, size) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzInput(data, size, refusing: StoreError.self) { control, rest in
        file.write(rest)
        let gguf = try GGUFFile(path: file.path)
        for t in gguf.tensors where t.type.stored != nil {
            let w = try gguf.float32(t)
            precondition(w.pointer.count == t.elementCount && w.shape == t.shape)
            if let base = w.pointer.baseAddress { touch(UnsafeRawPointer(base), w.pointer.count * 4) }
        }
        guard control & 1 != 0 else { return }
        let model: GGUFModel
        do { model = try GGUFModel(file: gguf) } catch is ModelError { return }
        for name in model.names {
            let w = try model.float32(name)
            precondition(w.shape == model.info(name)?.shape)
            if let base = w.pointer.baseAddress { touch(UnsafeRawPointer(base), w.pointer.count * 4) }
        }
    }
}
