/// Result of the first pass over a row.
struct RowScan {
    /// Largest value (NaNs are skipped here and caught by the later sums).
    var max: Float
    /// First index holding `max`.
    var argmax: Int
}

/// Pass 1: max and first argmax in one streaming read.
@inline(__always)
func scanRow(_ x: UnsafePointer<Float>, _ n: Int) -> RowScan {
    let W = KVec.scalarCount
    var maxv = KVec(repeating: -.infinity)
    // Block number at which each lane last saw a strictly larger value, so
    // per lane we keep the first occurrence of its maximum.
    var blockv = KIVec(repeating: 0)
    var blk = KIVec(repeating: 0)
    let one = KIVec(repeating: 1)
    var i = 0
    while i + W <= n {
        let v = loadK(x, i)
        let gt = v .> maxv
        maxv = maxv.replacing(with: v, where: gt)
        blockv = blockv.replacing(with: blk, where: gt)
        blk &+= one
        i += W
    }
    var best: Float = -.infinity
    var bestIndex = Int.max
    for lane in 0..<W where maxv[lane] != -.infinity {
        let idx = Int(blockv[lane]) * W + lane
        if maxv[lane] > best || (maxv[lane] == best && idx < bestIndex) {
            best = maxv[lane]
            bestIndex = idx
        }
    }
    while i < n {
        let v = x[i]
        if v > best { best = v; bestIndex = i }
        i += 1
    }
    if bestIndex == Int.max { bestIndex = 0 }
    return RowScan(max: best, argmax: bestIndex)
}
