import DistillTensor
import FuzzSupport

@testable import DistillStore

/// The JSON Lines and CSV readers (Datasets/PairedDatasets.swift, InputLists.swift): paired datasets and input lists
/// in every format, the editor's lenient parse, and teacher outputs in JSON Lines
/// (Teachers/JSONLinesTeacher.swift). The first byte picks the reader; the rest is the file.
/// A bad file must be refused with a `StoreError`.
let file = ScratchFile(name: "fuzz.dataset")

@_cdecl("FuzzDatasets_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in fuzz(data!, size) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzInput(data, size, refusing: StoreError.self) { control, bytes in
        let fields: [String: String] = control & 0x40 != 0 ? ["full": "f", "simplified": "s", "id": "k", "input": "i"] : [:]
        let delimiter: UInt8? = control & 0x80 != 0 ? 0x09 : nil
        let options = DatasetOptions(fields: fields, delimiter: delimiter)
        switch control & 7 {
        case 0: _ = try DatasetLoader.load(bytes, DatasetSource(path: "d.jsonl", kind: .paired, options: options), .jsonl)
        case 1: _ = try DatasetLoader.load(bytes, DatasetSource(path: "d.csv", kind: .paired, options: options), .csv)
        case 2: _ = try DatasetLoader.load(bytes, DatasetSource(path: "d.jsonl", kind: .inputs, options: options), .jsonl)
        case 3: _ = try DatasetLoader.load(bytes, DatasetSource(path: "d.csv", kind: .inputs, options: options), .csv)
        case 4: _ = try DatasetLoader.load(bytes, DatasetSource(path: "d.json", kind: .inputs, options: options), .json)
        case 5: _ = DatasetLoader.parseLeniently(bytes, DatasetSource(path: "d.jsonl", kind: .paired, options: options))
        case 6:
            let kind: OutputKind? = [nil, .logits, .probs, .logprobs][Int(control >> 3 & 3)]
            file.write(bytes)
            _ = try TeacherLoader.load(
                TeacherSource(path: file.path, format: .jsonl, options: TeacherOptions(kind: kind, allowNonFinite: control & 0x20 != 0)))
        default: _ = try DatasetLoader.load(bytes, DatasetSource(path: "d.txt", kind: .inputs, options: options), .txt)
        }
    }
}
