import DistillStore
import DistillTensor

/// What the teacher-file targets (FuzzNpy, FuzzSafetensors) share. The first byte picks
/// the teacher options; the rest is the file. `read` opens it with the format's own
/// reader and reads every byte that reader hands out; then the teacher assembly reads it
/// as `format`. A bad file must be refused with a `StoreError` by both.
public func fuzzTeacherFile(
    _ data: UnsafePointer<UInt8>, _ size: Int, file: ScratchFile, format: TeacherFormat,
    read: (String) throws -> Void
) -> CInt {
    fuzzInput(data, size, refusing: StoreError.self) { control, rest in
        file.write(rest)
        try read(file.path)
        let kind: OutputKind? = [nil, .logits, .probs, .logprobs][Int(control & 3)]
        let options = TeacherOptions(
            kind: kind, allowNonFinite: control & 4 != 0, vocabSize: control & 8 != 0 ? Int(control >> 4) : nil)
        _ = try TeacherLoader.load(TeacherSource(path: file.path, format: format, options: options)).outputs
    }
}

/// Reads every byte, so a view past the mapping is caught.
@inline(never)
public func touch(_ base: UnsafeRawPointer, _ count: Int) {
    var sum: UInt8 = 0
    for i in 0..<count { sum &+= base.load(fromByteOffset: i, as: UInt8.self) }
    blackHole = sum
}
/// Unchecked: a fuzz target runs one input at a time on one thread; this only keeps the reads from being optimised away.
nonisolated(unsafe) var blackHole: UInt8 = 0
