/// The keys and values of every position a sequence has been through, per layer: what lets a
/// decoding step attend to the past without recomputing it.
///
/// Layout: per layer, keys and values each [capacity, kvHeads × headDim] row-major, one row per
/// position, so a key head is a strided [positions, headDim] matrix that BLAS reads in place
/// (leading dimension kvHeads × headDim). Keys are stored after RoPE. The cache grows by doubling
/// as positions are added (up to the model's context length).
///
/// - Important: a cache belongs to the model that made it and to one sequence; it is not safe to
///   use from two threads at once (hand it over, do not share it).
public final class KVCache {
    public let layers: Int
    /// Floats per position per layer: kvHeads × headDim.
    public let width: Int
    /// Positions held.
    public private(set) var count: Int = 0
    private(set) var capacity: Int
    private let limit: Int
    private(set) var keys: [UnsafeMutablePointer<Float>]
    private(set) var values: [UnsafeMutablePointer<Float>]
    /// The model that made this cache.
    let owner: ObjectIdentifier

    init(layers: Int, width: Int, capacity: Int, limit: Int, owner: ObjectIdentifier) {
        self.layers = layers
        self.width = width
        self.limit = limit
        self.owner = owner
        self.capacity = max(1, min(capacity, limit))
        keys = (0..<layers).map { _ in .allocate(capacity: max(1, min(capacity, limit)) * width) }
        values = (0..<layers).map { _ in .allocate(capacity: max(1, min(capacity, limit)) * width) }
    }

    deinit {
        for p in keys { p.deallocate() }
        for p in values { p.deallocate() }
    }

    /// Makes room for `n` positions in all, keeping those held.
    func reserve(_ n: Int) {
        guard n > capacity else { return }
        let newCapacity = min(limit, max(n, 2 * capacity))
        for l in 0..<layers {
            let k = UnsafeMutablePointer<Float>.allocate(capacity: newCapacity * width)
            let v = UnsafeMutablePointer<Float>.allocate(capacity: newCapacity * width)
            k.update(from: keys[l], count: count * width)
            v.update(from: values[l], count: count * width)
            keys[l].deallocate()
            values[l].deallocate()
            keys[l] = k
            values[l] = v
        }
        capacity = newCapacity
    }

    /// Records that `n` more positions were written.
    func advance(by n: Int) { count += n }

    /// Forgets every position from `n` on (keeping a shared prompt, say).
    public func truncate(to n: Int) {
        precondition(n >= 0 && n <= count, "truncate(to: \(n)) on a cache of \(count) positions")
        count = n
    }

    /// Forgets every position.
    public func reset() { count = 0 }

    /// Bytes allocated for keys and values.
    public var residentBytes: Int { 2 * layers * capacity * width * MemoryLayout<Float>.stride }
}
