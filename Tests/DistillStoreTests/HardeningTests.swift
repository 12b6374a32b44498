import CStoreSupport
import DistillTensor
import Foundation
import Testing

@testable import DistillStore

#if canImport(Glibc)
    import Glibc
#endif

/// Files that are not what a load expects, or that change after it (issue #10).
struct HardeningTests {
    let dir = TempDir()

    func npy(_ header: String, body: [UInt8]) -> [UInt8] {
        var h = Array(header.utf8)
        while (10 + h.count + 1) % 64 != 0 { h.append(0x20) }
        h.append(0x0A)
        var out: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0]
        out += withUnsafeBytes(of: UInt16(h.count).littleEndian) { Array($0) }
        return out + h + body
    }

    // MARK: - Sizes computed from files

    @Test(arguments: ["(4294967296, 4294967296)", "(4611686018427387904, 1)", "(3, 3074457345618258603)"])
    func npyShapeWhoseByteSizeOverflowsIsRefused(shape: String) {
        let p = dir.write("huge.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }", body: [0, 0, 0, 0]))
        let e = storeError { _ = try TeacherLoader.load(TeacherSource(path: p)) }
        #expect(e?.code == .tooLarge)
        #expect(e?.file == p)
        #expect(e?.message.contains("'shape'") == true)
    }

    @Test func safetensorsShapeWhoseByteSizeOverflowsIsRefused() {
        let bytes = safetensorsBytes(
            [("logits", "F32", [1 << 32, 1 << 32], f32Bytes([0]))], offsetsOverride: ["logits": (0, 4)])
        let p = dir.write("huge.safetensors", bytes)
        let e = storeError { _ = try TeacherLoader.load(TeacherSource(path: p)) }
        #expect(e?.code == .badOffsets)
        #expect(e?.tensor == "logits")
    }

    @Test func vocabularyIdsThatWouldAllocateTheGapAreRefused() {
        let p = dir.write("vocab.json", "{\"a\": 0, \"b\": 9223372036854775807}")
        let e = storeError { _ = try Vocabulary.read(path: p) }
        #expect(e?.code == .indexOutOfRange)
        #expect(e?.message.contains("'b'") == true)
    }

    @Test func tensorSizeIsChecked() {
        let s = TensorStorage(copying: UnsafeRawBufferPointer(start: nil, count: 0))
        #expect(throws: Tensor.ShapeError.tooLarge) { try Tensor(storage: s, dtype: .float32, shape: [1 << 62, 1]) }
        #expect(Tensor.byteCount(shape: [1 << 31, 1 << 31], width: 4) == nil)
        #expect(Tensor.byteCount(shape: [2, 3], width: 4) == 24)
    }

    @Test func jsonLinesLineLongerThanTheBudgetAllowsIsRefusedNamingIt() {
        let long = "{\"logits\": [" + Array(repeating: "0", count: 5000).joined(separator: ",") + "]}"
        let p = dir.write("long.jsonl", "{\"logits\": [1, 2]}\n" + long + "\n")
        let e = storeError { _ = try TeacherLoader.load(TeacherSource(path: p), budget: 64 * 1024) }
        #expect(e?.code == .tooLarge)
        #expect(e?.line == 2)
        #expect(e?.numbers["limit"] == 4096)
        // Without a budget the line is read.
        #expect((try? TeacherLoader.load(TeacherSource(path: p))) == nil)  // widths differ: a shape error, not a size one
        let d = dir.write("long_ds.jsonl", "{\"full\": \"a\", \"simplified\": \"b\"}\n" + long + "\n")
        let de = storeError { _ = try DatasetLoader.load(DatasetSource(path: d), budget: 64 * 1024) }
        #expect(de?.code == .tooLarge)
        #expect(de?.line == 2)
    }

    @Test func jsonLinesPaddingLargerThanTheBudgetIsRefusedBeforeAllocating() {
        var text = "{\"logits\": [" + Array(repeating: "[0]", count: 3000).joined(separator: ",") + "]}\n"
        for _ in 0..<3000 { text += "{\"logits\": [[0]]}\n" }
        let p = dir.write("ragged.jsonl", text)
        let e = storeError { _ = try TeacherLoader.load(TeacherSource(path: p), budget: 1 << 20) }
        #expect(e?.code == .budgetExceeded)
        #expect(e?.line == 1)
        #expect(e?.numbers["needed"] == 3001 * 3000 * 4)
    }

    /// The nested-array reader took its shape from the first element at each depth
    /// and allocated the product before checking the rest: a 360 kB line promising
    /// 60000 × 60000 values (14 GB) would have been allocated and zeroed.
    @Test func jsonLinesRowWhoseFirstElementPromisesAHugeShapeIsRefusedAsRagged() {
        let first = "[" + Array(repeating: "0", count: 60000).joined(separator: ",") + "]"
        let rest = Array(repeating: "[0]", count: 59999).joined(separator: ",")
        let p = dir.write("promise.jsonl", "{\"logits\": [" + first + "," + rest + "]}\n")
        let e = storeError { _ = try TeacherLoader.load(TeacherSource(path: p)) }
        #expect(e?.code == .badLine)
        #expect(e?.line == 1)
        #expect(e?.message.contains("ragged") == true)
    }

    // MARK: - Only regular files

    @Test func fifoDirectoryAndDeviceAreRefusedNamingWhatTheyAre() throws {
        let fifo = dir.file("pipe.npy")
        #expect(mkfifo(fifo, 0o600) == 0)
        for (path, what) in [(fifo, "a FIFO"), (dir.path, "a directory"), ("/dev/zero", "a character device")] {
            let e = storeError { _ = try TeacherLoader.load(TeacherSource(path: path, format: .npy)) }
            #expect(e?.code == .unreadable)
            #expect(e?.file == path)
            #expect(e?.message.contains(what) == true, "\(e?.message ?? "")")
            let d = storeError { _ = try DatasetLoader.load(DatasetSource(path: path, format: .jsonl)) }
            #expect(d?.message.contains(what) == true)
            let v = storeError { _ = try Vocabulary.read(path: path) }
            #expect(v?.message.contains(what) == true)
        }
    }

    // MARK: - Inputs that must be refused

    @Test func nulInsideAPathIsRefusedNamingTheField() {
        let good = dir.write("good.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }", body: f32Bytes([1, 2])))
        let e = storeError { _ = try TeacherLoader.load(TeacherSource(path: good + "\u{0}/../../etc/passwd")) }
        #expect(e?.code == .invalidPath)
        #expect(e?.field == "path")
        #expect(e?.numbers["byte"] == good.utf8.count)
        let v = storeError { _ = try TeacherLoader.load(TeacherSource(path: good, options: TeacherOptions(vocabulary: good + "\u{0}"))) }
        #expect(v?.field == "options.vocabulary")
        let registry = Registry()
        let r = storeError { try registry.loadTeacher(name: "t", source: TeacherSource(path: good + "\u{0}x")) }
        #expect(r?.code == .invalidPath)
        #expect(registry.list().isEmpty)
        let d = storeError { _ = try DatasetLoader.load(DatasetSource(path: good + "\u{0}.csv")) }
        #expect(d?.field == "path")
    }

    @Test func invalidUTF8InCSVAndTextIsRefusedNamingLineAndColumn() {
        let csv = dir.write("bad.csv", Array("id,full,simplified\na,ok,ok\nb,caf".utf8) + [0xE9] + Array(",x\n".utf8))
        let e = storeError { _ = try DatasetLoader.load(DatasetSource(path: csv)) }
        #expect(e?.code == .invalidUTF8)
        #expect(e?.line == 3)
        #expect(e?.numbers["column"] == 6)
        #expect(e?.numbers["byte"] == 32)
        let txt = dir.write("bad.txt", Array("fine\n".utf8) + [0xC0, 0x80] + Array(" overlong\n".utf8))
        let t = storeError { _ = try DatasetLoader.load(DatasetSource(path: txt, kind: .inputs)) }
        #expect(t?.code == .invalidUTF8)
        #expect(t?.line == 2)
        #expect(t?.numbers["column"] == 1)
        let vocab = dir.write("vocab.txt", Array("a\nb\n".utf8) + [0xED, 0xA0, 0x80] + Array("\n".utf8))
        let v = storeError { _ = try Vocabulary.read(path: vocab) }
        #expect(v?.code == .invalidUTF8)
        #expect(v?.line == 3)
        // Valid multi-byte text still loads.
        let ok = dir.write("ok.csv", "id,full,simplified\na,café ☕ 𝄞,ok\n")
        #expect((try? DatasetLoader.load(DatasetSource(path: ok)))?.examples.first?.full == "café ☕ 𝄞")
    }

    @Test func firstInvalidUTF8FindsEachKindOfBadSequence() {
        func check(_ bytes: [UInt8]) -> Int? { bytes.withUnsafeBytes { firstInvalidUTF8($0) } }
        #expect(check(Array("plain ascii é ☕ 𝄞".utf8)) == nil)
        #expect(check([0x61, 0x80]) == 1)  // lone continuation byte
        #expect(check([0x61, 0xE2, 0x98]) == 1)  // truncated sequence
        #expect(check([0xC1, 0xBF]) == 0)  // overlong
        #expect(check([0xED, 0xB0, 0x80]) == 0)  // surrogate
        #expect(check([0xF4, 0x90, 0x80, 0x80]) == 0)  // past U+10FFFF
        #expect(check([0xFF]) == 0)
    }

    @Test func duplicateTopKIndicesAreRefusedAtLoadNamingTensorRowAndIndex() {
        let bytes = safetensorsBytes(
            [
                ("topk_indices", "I32", [2, 2, 3], i32Bytes([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 5, 9])),
                ("topk_logits", "F32", [2, 2, 3], f32Bytes(Array(repeating: 0.5, count: 12))),
            ], metadata: ["vocab_size": "10"])
        let p = dir.write("dup.safetensors", bytes)
        let e = storeError { _ = try TeacherLoader.load(TeacherSource(path: p)) }
        #expect(e?.code == .duplicateIndex)
        #expect(e?.tensor == "topk_indices")
        #expect(e?.numbers["example"] == 1)
        #expect(e?.numbers["position"] == 1)
        #expect(e?.numbers["index"] == 9)
        #expect(e?.numbers["first"] == 0)
        #expect(e?.numbers["second"] == 2)
    }

    // MARK: - Files that change after loading

    /// A page-aligned multi-page file, mapped; then truncated from another
    /// descriptor and read across the missing pages: no SIGBUS reaches the
    /// process, the missing pages read as zeros and the map says it was truncated.
    @Test func readingPastATruncatedEndReadsZerosAndMarksTheMap() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let p = dir.write("t.bin", [UInt8](repeating: 7, count: 4 * page))
        let map = try MappedFile(path: p)
        #expect(!map.truncated)
        let before = distill_store_absorbed_faults()
        #expect(truncate(p, off_t(page)) == 0)
        var sum = 0
        map.withBytes { b in for i in stride(from: 0, to: b.count, by: 64) { sum += Int(b[i]) } }
        #expect(sum == 7 * page / 64)  // the first page only: the rest read as zeros
        #expect(map.truncated)
        #expect(distill_store_absorbed_faults() > before)
        let e = storeError { try map.checkUnchanged() }
        #expect(e?.code == .fileChanged)
        #expect(e?.file == p)
    }

    /// The guard answers only for registered maps: a SIGBUS elsewhere still ends
    /// the process (checked in a forked child, which maps a file itself and reads
    /// past its truncated end).
    @Test func aSigbusOutsideRegisteredMapsStillCrashes() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        _ = try MappedFile(path: dir.write("installs-guard.bin", [1]))
        let p = dir.write("raw.bin", [UInt8](repeating: 3, count: 2 * page))
        let fd = open(p, O_RDWR)
        #expect(fd >= 0)
        defer { close(fd) }
        guard let raw = mmap(nil, 2 * page, PROT_READ, MAP_SHARED, fd, 0), raw != MAP_FAILED else {
            Issue.record("mmap failed")
            return
        }
        defer { munmap(raw, 2 * page) }
        let pid = fork()
        if pid == 0 {
            let null = open("/dev/null", O_WRONLY)  // the crash report is expected: keep it out of the test log
            _ = dup2(null, 1)
            _ = dup2(null, 2)
            _ = ftruncate(fd, 0)
            let v = raw.load(fromByteOffset: page, as: UInt8.self)
            _exit(v == 0 ? 0 : 1)  // reached only if the fault was absorbed
        }
        var status: Int32 = 0
        #expect(waitpid(pid, &status, 0) == pid)
        let signalled = status & 0x7f != 0
        let exitCode = (status >> 8) & 0xff
        #expect(signalled || exitCode != 0, "status \(status)")
    }

    @Test func fileGuardRefusesAResultComputedAcrossATruncation() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let p = dir.write("g.bin", [UInt8](repeating: 1, count: 3 * page))
        let e = storeError {
            _ = try FileGuard.run { () -> Int in
                let map = try MappedFile(path: p)
                _ = truncate(p, 0)
                return map.withBytes { b in b.reduce(0) { $0 + Int($1) } }
            }
        }
        #expect(e?.code == .fileChanged)
        #expect(e?.file == p)
        // A rewrite in place during the run (same size, no fault) is refused too.
        let r = dir.write("r.bin", [UInt8](repeating: 1, count: page))
        let rewritten = storeError {
            _ = try FileGuard.run { () -> Int in
                let map = try MappedFile(path: r)
                usleep(20_000)
                let fd = open(r, O_WRONLY)
                _ = [UInt8](repeating: 2, count: page).withUnsafeBytes { pwrite(fd, $0.baseAddress, page, 0) }
                close(fd)
                return map.withBytes { b in b.reduce(0) { $0 + Int($1) } }
            }
        }
        #expect(rewritten?.code == .fileChanged)
        #expect(rewritten?.file == r)
        // A run over an untouched file returns its result.
        let q = dir.write("h.bin", [UInt8](repeating: 1, count: page))
        let total = try FileGuard.run { try MappedFile(path: q).withBytes { b in b.reduce(0) { $0 + Int($1) } } }
        #expect(total == page)
    }

    @Test func aLoadedTeacherWhoseFileChangedIsRefusedAtUse() throws {
        let values = f32Bytes(Array(repeating: 0.25, count: 8))
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }"
        let p = dir.write("t.npy", npy(header, body: values))
        let registry = Registry()
        let t = try registry.loadTeacher(name: "t", source: TeacherSource(path: p))
        try t.checkFiles()
        #expect(t.files.count == 1)
        usleep(20_000)
        // Same size, same inode, other values.
        let fd = open(p, O_WRONLY)
        _ = f32Bytes([9]).withUnsafeBytes { pwrite(fd, $0.baseAddress, 4, off_t(npy(header, body: []).count)) }
        close(fd)
        let e = storeError { try t.checkFiles() }
        #expect(e?.code == .fileChanged)
        #expect(e?.file == p)
        // Replaced under its path.
        let q = dir.write("u.npy", npy(header, body: values))
        let u = try registry.loadTeacher(name: "u", source: TeacherSource(path: q))
        _ = dir.write("u2.npy", npy(header, body: values))
        #expect(rename(dir.file("u2.npy"), q) == 0)
        #expect(storeError { try u.checkFiles() }?.code == .fileChanged)
        // JSON Lines teachers are copied at load: nothing to check.
        let j = dir.write("j.jsonl", "{\"logits\": [1, 2]}\n")
        let jt = try registry.loadTeacher(name: "j", source: TeacherSource(path: j))
        #expect(jt.files.isEmpty)
        _ = dir.write("j.jsonl", "{\"logits\": [3, 4, 5]}\n")
        try jt.checkFiles()
    }
}
