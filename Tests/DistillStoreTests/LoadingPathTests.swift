import DistillTensor
import Foundation
import Testing

@testable import DistillStore

/// One loading path: a file is opened once, whatever tells its format; files a request reads
/// for its own use (anonymous entries) count against the budget until the request ends;
/// builtins are a scheme the registry resolves.
struct LoadingPathTests {
    let dir = TempDir()

    /// The paths opened while `body` runs, in order (`openForReading` reports each open to
    /// the thread's `FileGuard.run`).
    func opens(_ body: () throws -> Void) throws -> [String] {
        try FileGuard.run {
            try body()
            return FileGuard.current!.opened
        }
    }

    /// A v1 `.npy` of float32 values, shape [rows, values.count / rows].
    func npyBytes(_ values: [Float], rows: Int) -> [UInt8] {
        var header = Array("{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows), \(values.count / rows)), }".utf8)
        while (10 + header.count + 1) % 64 != 0 { header.append(0x20) }
        header.append(0x0A)
        return [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(header.count & 0xFF), UInt8(header.count >> 8)] + header
            + f32Bytes(values)
    }

    @Test func aTeacherFileWithoutAFormatIsOpenedOnce() throws {
        // No extension: the format can only come from the content.
        let files = [
            dir.write("st", safetensorsBytes([("logits", "F32", [2, 2], f32Bytes([1, 2, 3, 4]))])),
            dir.write("np", npyBytes([1, 2, 3, 4], rows: 2)),
            dir.write("jl", "{\"logits\": [1, 2]}\n{\"logits\": [3, 4]}\n"),
        ]
        for (path, format) in zip(files, [TeacherFormat.safetensors, .npy, .jsonl]) {
            var loaded: LoadedTeacher?
            #expect(try opens { loaded = try TeacherLoader.load(TeacherSource(path: path)) } == [path])
            #expect(loaded?.format == format)
            #expect(try floats(values(loaded!.outputs)) == [1, 2, 3, 4])
            // Through the registry too: the budget's estimate stats the file, it does not open it.
            let r = Registry(memoryBudget: 1 << 20)
            #expect(try opens { try r.loadTeacher(name: "t", source: TeacherSource(path: path)) } == [path])
            #expect(try opens { _ = try r.loadAnonymousTeacher(path: path) } == [path])
        }
    }

    @Test func aDatasetFileWithoutAFormatIsOpenedOnce() throws {
        let paired = dir.write("pairs", "{\"id\": \"a\", \"full\": \"long a\", \"simplified\": \"a\"}\n")
        let list = dir.write("list", "[\"one\", \"two\"]")
        var loaded: LoadedDataset?
        #expect(try opens { loaded = try DatasetLoader.load(DatasetSource(path: paired)) } == [paired])
        #expect(loaded?.format == .jsonl && loaded?.examples.map(\.id) == ["a"])
        #expect(try opens { loaded = try DatasetLoader.load(DatasetSource(path: list, kind: .inputs)) } == [list])
        #expect(loaded?.format == .json && loaded?.inputs.map(\.text) == ["one", "two"])
    }

    /// A teacher file of `count` float32 values; its size on disk is what a load reserves.
    func teacherFile(_ name: String, count: Int) -> (path: String, size: Int) {
        let bytes = safetensorsBytes([("logits", "F32", [1, count], f32Bytes([Float](repeating: 0.5, count: count)))])
        return (dir.write(name, bytes), bytes.count)
    }

    @Test func anAnonymousEntryCountsAgainstTheBudgetUntilTheRequestEnds() throws {
        let (file, size) = teacherFile("t.safetensors", count: 600)
        let r = Registry(memoryBudget: size * 3 / 2)
        try FileGuard.run {
            // Dropped at once by its caller, it is still held for the request.
            _ = try r.loadAnonymousTeacher(path: file)
            #expect(r.anonymousUsage == size)
            #expect(r.list().isEmpty)
            // A named load of the same file, which fits the budget alone, does not fit beside it.
            let refused = storeError { try r.loadTeacher(name: "t", source: TeacherSource(path: file)) }
            #expect(refused?.code == .budgetExceeded)
            #expect(refused?.numbers == ["budget": size * 3 / 2, "needed": size, "inUse": size])
        }
        #expect(r.anonymousUsage == 0)
        try r.loadTeacher(name: "t", source: TeacherSource(path: file))
        // And the other way round, with the same error a named load gets.
        let refused = storeError { _ = try r.loadAnonymousTeacher(path: file) }
        #expect(refused?.code == .budgetExceeded)
        #expect(refused?.numbers == ["budget": size * 3 / 2, "needed": size, "inUse": size])
        #expect(refused?.message.contains("loading '\(file)' needs about \(size) bytes") == true)
        #expect(r.anonymousUsage == 0)
    }

    @Test func aFailedAnonymousLoadHoldsNothing() throws {
        let r = Registry(memoryBudget: 1 << 20)
        let bad = dir.write("nan.safetensors", safetensorsBytes([("logits", "F32", [1, 2], f32Bytes([.nan, 1]))]))
        try FileGuard.run {
            #expect(storeError { _ = try r.loadAnonymousTeacher(path: bad) }?.code == .nonFinite)
            #expect(r.anonymousUsage == 0)
            let inputs = dir.write("inputs.txt", "one\ntwo\n")
            let entry = try r.loadAnonymousDataset(path: inputs, kind: .inputs)
            #expect(entry.inputs.map(\.text) == ["one", "two"])
            #expect(r.anonymousUsage == entry.bytes)
        }
        #expect(r.anonymousUsage == 0)
    }

    @Test func builtinsAreASchemeTheRegistryResolves() throws {
        let r = Registry()
        let demo = try r.loadTeacher(name: "demo", path: "builtin:demo")
        #expect(demo.source == nil && demo.ids?.first == "ex1" && demo.vocabulary == ["apple", "banana", "cherry"])
        #expect(try r.loadAnonymousTeacher(path: "builtin:demo-student-A").outputs.examples == 6)
        // A builtin has no file: a format or options given with one name the member.
        let format = storeError { _ = try r.loadAnonymousTeacher(path: "builtin:demo", format: .npy) }
        #expect(format?.code == .notAFile && format?.field == "format")
        let options = storeError { _ = try r.loadDataset(name: "d", path: "builtin:demo", options: DatasetOptions()) }
        #expect(options?.code == .notAFile && options?.field == "options")
        // A name in the scheme that no builtin has is not looked for on disk.
        let unknown = storeError { _ = try r.loadTeacher(name: "x", path: "builtin:nope") }
        #expect(unknown?.code == .notFound && unknown?.file == "builtin:nope")
        #expect(try r.loadDataset(name: "inputs", path: "builtin:demo-inputs").kind == .inputs)
        #expect(storeError { _ = try r.loadAnonymousDataset(path: "builtin:demo", kind: .inputs) }?.code == .notFound)
        #expect(r.list().map(\.name) == ["demo", "inputs"])
    }
}
