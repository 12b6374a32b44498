import DistillStore
import FuzzSupport

/// The safetensors reader (Safetensors.swift) and the teacher assembly over it
/// (Teachers/SafetensorsTeacher.swift, through `fuzzTeacherFile`); every tensor handed out is read through.
let file = ScratchFile(name: "fuzz.safetensors")

@_cdecl("FuzzSafetensors_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in fuzz(data!, size) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzTeacherFile(data, size, file: file, format: .safetensors) { path in
        let st = try SafetensorsFile(path: path)
        for name in st.entries.keys.sorted() {
            guard let (tensor, _) = try? st.tensor(name) else { continue }
            touch(tensor.storage.base, tensor.storage.byteCount)
        }
    }
}
