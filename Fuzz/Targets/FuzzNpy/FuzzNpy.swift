import DistillStore
import DistillTensor
import FuzzSupport

/// The `.npy` reader (Npy.swift, with its Python-literal header parser) and the
/// teacher assembly over it. The first byte picks the teacher options; the rest is
/// the file. A bad file must be refused with a `StoreError`.
let file = ScratchFile(name: "fuzz.npy")

@_cdecl("FuzzNpy_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in fuzz(data!, size) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let control = data[0]
    file.write(data + 1, size - 1)
    do {
        let array = try NpyArray(path: file.path)
        touch(array.tensor.storage.base, array.tensor.storage.byteCount)
    } catch is StoreError {
        return 0
    } catch {
        fatalError("not a StoreError: \(type(of: error)): \(error)")
    }
    let kind: OutputKind? = [nil, .logits, .probs, .logprobs][Int(control & 3)]
    let options = TeacherOptions(
        kind: kind, allowNonFinite: control & 4 != 0, vocabSize: control & 8 != 0 ? Int(control >> 4) : nil)
    do {
        _ = try TeacherLoader.load(TeacherSource(path: file.path, format: .npy, options: options))
    } catch is StoreError {
    } catch {
        fatalError("not a StoreError: \(type(of: error)): \(error)")
    }
    return 0
}

@inline(never)
func touch(_ base: UnsafeRawPointer, _ count: Int) {
    var sum: UInt8 = 0
    for i in 0..<count { sum &+= base.load(fromByteOffset: i, as: UInt8.self) }
    blackHole = sum
}
nonisolated(unsafe) var blackHole: UInt8 = 0
