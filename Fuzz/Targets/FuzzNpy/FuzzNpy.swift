import DistillStore
import FuzzSupport

/// The `.npy` reader (Npy.swift, with its Python-literal header parser) and the
/// teacher assembly over it (`fuzzTeacherFile`).
let file = ScratchFile(name: "fuzz.npy")

@_cdecl("FuzzNpy_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in fuzz(data!, size) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzTeacherFile(data, size, file: file, format: .npy) { path in
        let array = try NpyArray(path: path)
        touch(array.tensor.storage.base, array.tensor.storage.byteCount)
    }
}
