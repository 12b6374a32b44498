/// An open-addressing hash index over n-grams of one order, keyed by word-id tuples.
///
/// Rows are the n-grams in insertion order, stored flat (`order` ids per row) so a
/// table of a few million 5-grams is a handful of arrays, not millions of strings
/// or small arrays. The slot array holds row numbers (-1: empty) at a load factor
/// of at most 0.7, with linear probing. The full ids are compared on a hit, so a
/// hash collision can never answer for the wrong n-gram (kenlm keeps only a 64-bit
/// hash; the ids cost 4 bytes a word and buy certainty).
struct NGramIndex: Sendable {
    let order: Int
    /// Row-major: row r is `ids[r * order ..< (r + 1) * order]`.
    private(set) var ids: [WordID] = []
    private var slots: [Int32]
    private var mask: Int
    private(set) var count = 0

    init(order: Int, capacity: Int = 0) {
        precondition(order >= 1)
        self.order = order
        let size = Self.slotCount(for: capacity)
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
        ids.reserveCapacity(capacity * order)
    }

    private static func slotCount(for rows: Int) -> Int {
        var size = 16
        while size * 7 < rows * 10 { size *= 2 }
        return size
    }

    /// SplitMix64-style mixing of the ids: deterministic across runs (Swift's
    /// `Hasher` is seeded per process), and good enough that linear probing stays short.
    @inline(__always)
    private static func hash(_ key: UnsafeBufferPointer<WordID>) -> Int {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15
        for id in key {
            h = (h ^ UInt64(id)) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 31
        }
        h = (h ^ (h >> 30)) &* 0x94D0_49BB_1331_11EB
        return Int(truncatingIfNeeded: h ^ (h >> 31))
    }

    /// The row of `key` (exactly `order` ids), or nil.
    @inline(__always)
    func find(_ key: UnsafeBufferPointer<WordID>) -> Int? {
        var slot = Self.hash(key) & mask
        return ids.withUnsafeBufferPointer { rows in
            slots.withUnsafeBufferPointer { slots in
                while true {
                    let row = Int(slots[slot])
                    if row < 0 { return nil }
                    let base = row * order
                    var same = true
                    for i in 0..<order where rows[base + i] != key[i] {
                        same = false
                        break
                    }
                    if same { return row }
                    slot = (slot + 1) & mask
                }
            }
        }
    }

    func find(_ key: [WordID]) -> Int? { key.withUnsafeBufferPointer { find($0) } }

    /// Adds `key` as a new row unless it is there already; returns its row and
    /// whether it was added.
    @discardableResult
    mutating func insert(_ key: UnsafeBufferPointer<WordID>) -> (row: Int, inserted: Bool) {
        if let row = find(key) { return (row, false) }
        if (count + 1) * 10 > slots.count * 7 { grow() }
        let row = count
        ids.append(contentsOf: key)
        count += 1
        place(row: row, hash: Self.hash(key))
        return (row, true)
    }

    @discardableResult
    mutating func insert(_ key: [WordID]) -> (row: Int, inserted: Bool) { key.withUnsafeBufferPointer { insert($0) } }

    private mutating func place(row: Int, hash: Int) {
        var slot = hash & mask
        while slots[slot] >= 0 { slot = (slot + 1) & mask }
        slots[slot] = Int32(row)
    }

    private mutating func grow() {
        let size = slots.count * 2
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
        let order = order
        for row in 0..<count {
            let h = ids.withUnsafeBufferPointer { Self.hash(UnsafeBufferPointer(rebasing: $0[row * order..<(row + 1) * order])) }
            place(row: row, hash: h)
        }
    }

    /// The ids of row `row`.
    func key(_ row: Int) -> ArraySlice<WordID> { ids[row * order..<(row + 1) * order] }

    /// Bytes held by the index (ids and slots), for memory reports.
    var storageBytes: Int { ids.capacity * MemoryLayout<WordID>.stride + slots.capacity * MemoryLayout<Int32>.stride }
}

extension NGramIndex {
    func find(_ key: ArraySlice<WordID>) -> Int? { key.withUnsafeBufferPointer { find($0) } }

    @discardableResult
    mutating func insert(_ key: ArraySlice<WordID>) -> (row: Int, inserted: Bool) {
        key.withUnsafeBufferPointer { insert($0) }
    }
}
