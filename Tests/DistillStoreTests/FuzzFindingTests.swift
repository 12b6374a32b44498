import Foundation
import Testing

@testable import DistillStore

/// Inputs found while fuzzing the readers (Fuzz/, README "Fuzzing"): each used to
/// crash the daemon; each is now refused with a `StoreError` naming the file.
struct FuzzFindingTests {
    let dir = TempDir()

    /// An .npy v1 file whose header is `header`, padded as numpy pads it, then `data`.
    func npy(_ header: String, _ data: [UInt8] = []) -> [UInt8] {
        var h = Array(header.utf8)
        while (h.count + 11) % 16 != 0 { h.append(0x20) }
        h.append(0x0A)
        return [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(h.count & 0xFF), UInt8(h.count >> 8)] + h + data
    }

    /// A shape whose byte count overflows Int wrapped to 0 bytes, passed the size check
    /// and trapped in the tensor's element count (FuzzNpy).
    @Test func npyShapeWhoseByteCountOverflowsIsRefused() {
        for shape in ["(4294967296, 4294967296)", "(3037000500, 3037000500)", "(9223372036854775807, 2)"] {
            let path = dir.write("overflow.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }"))
            let e = storeError { _ = try NpyArray(path: path) }
            #expect(e?.code == .tooLarge, "shape \(shape)")
            #expect(e?.file == path)
            #expect(e?.message.contains("does not fit in 64 bits") == true, "shape \(shape)")
        }
    }

    /// A header nesting brackets 30,000 deep (60 KB, a valid v1 header length) overflowed
    /// the stack of the recursive header parser.
    @Test func npyHeaderNestedTooDeeplyIsRefused() {
        let deep = String(repeating: "[", count: 30000) + String(repeating: "]", count: 30000)
        let path = dir.write("deep.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': \(deep)}", [0, 0, 0, 0]))
        let e = storeError { _ = try NpyArray(path: path) }
        #expect(e?.code == .malformedHeader)
        #expect(e?.message.contains("nested") == true)
        // Ordinary nesting still reads.
        let ok = dir.write("ok.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': [[[(1, 2)]]]}", [0, 0, 0, 0]))
        #expect(throws: Never.self) { _ = try NpyArray(path: ok) }
    }
}
