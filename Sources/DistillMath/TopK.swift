/// Top-k inputs: only the k largest outputs of a side are known.
///
/// The compared outcomes are the union U of the known vocabulary indices of
/// the top-k side(s) (for a dense side every index of U is known exactly).
/// Per side, with ℓ_k the known log-values (log p, log-probs, or logits):
///
/// - tempered weights w_k = exp(ℓ_k / τ);
/// - a top-k side's raw tail is r = max(0, 1 − Σ exp(ℓ_k)) for probs and
///   log-probs, and r = 0 for logits (a top-k logit row is taken to be the
///   whole distribution: softmax over its K entries);
/// - `.renormalize`: P(k) = w_k / Σ w over its own known entries, 0 for
///   indices of U it does not know; a dense side uses its exact
///   softmax(x/τ) restricted to U and divided by its mass on U;
/// - `.tailBucket`: one extra outcome. A top-k side gives it weight r^{1/τ}
///   (the tail is tempered as if it were a single outcome — exact at τ = 1,
///   an approximation otherwise) and normalises over K + 1; a dense side puts
///   its exact mass outside U there. When U is the whole vocabulary there is
///   no outside: no bucket, and each side is renormalised over U.
///
/// The reported tail mass of a side is the probability, in its full tempered
/// distribution, that falls outside the compared known entries (for
/// `.renormalize`, the mass that renormalising discarded).
struct TopKRowInput {
    /// Dense row log-values and scan, or nil for a top-k side.
    var dense: UnsafePointer<Float>?
    var scan = RowScan(max: 0, argmax: 0)
    /// log S for the dense row at the side's temperature.
    var logS = 0.0
    /// Top-k log-values (float, after probs → log conversion).
    var known: UnsafePointer<Float>?
    var invTau = 1.0
    /// Tempered log-normaliser and tail log-weight for a top-k side.
    var logZ = 0.0
    var shift = 0.0
    var logTailWeight = -Double.infinity
    var argmaxVocab = 0
}

final class WorkerScratch {
    let teacherBuf: UnsafeMutablePointer<Float>
    let studentBuf: UnsafeMutablePointer<Float>
    var keys: [Int] = []
    var lp: [Double] = []
    var lq: [Double] = []

    /// e_i / f_i of the fused pass for the two-pass dense losses (empty
    /// buffers when unused).
    let expStore: ExpStore

    init(teacherLength: Int, studentLength: Int, expStoreLength: Int = 0) {
        teacherBuf = .allocate(capacity: Swift.max(teacherLength, 16))
        studentBuf = .allocate(capacity: Swift.max(studentLength, 16))
        let blocks = ExpStore.blocks(expStoreLength)
        expStore = ExpStore(
            e: .allocate(capacity: Swift.max(expStoreLength, 16)),
            f: .allocate(capacity: Swift.max(expStoreLength, 16)),
            blockMaxT: .allocate(capacity: blocks), blockMaxS: .allocate(capacity: blocks))
    }

    deinit {
        teacherBuf.deallocate()
        studentBuf.deallocate()
        expStore.e.deallocate(); expStore.f.deallocate()
        expStore.blockMaxT.deallocate(); expStore.blockMaxS.deallocate()
    }
}

/// Prepares one side of a top-k comparison.
func prepareTopKSide(
    _ side: SideView, row r: Int, buf: UnsafeMutablePointer<Float>, tau: Double,
    renormalizeInput: Bool, policy: TopKTailPolicy
) throws -> TopKRowInput {
    var input = TopKRowInput()
    input.invTau = 1 / tau
    let x = try side.logValueRow(r, scratch: buf, renormalize: renormalizeInput)
    let n = side.rowLength
    if !side.isTopK {
        let scan = scanRow(x, n)
        try checkScan(side, row: r, x, n, scan)
        input.dense = x
        input.scan = scan
        input.logS = dlog(expSum(x, n, max: scan.max, invTau: Float(input.invTau)))
        if input.logS.isNaN, let (i, msg) = firstNonSoftmaxable(x, n) { throw side.error(row: r, vocabIndex: i, msg) }
        input.argmaxVocab = scan.argmax
        return input
    }
    input.known = x
    var mx = -Float.infinity
    var arg = 0
    for k in 0..<n {
        let v = x[k]
        if v.isNaN { throw side.error(row: r, vocabIndex: k, "value is NaN") }
        if v == .infinity { throw side.error(row: r, vocabIndex: k, "value is +inf") }
        if side.kind == .logprobs && v > LossConfig.logProbTolerance {
            throw side.error(row: r, vocabIndex: k, "log-probability \(v) is > 0")
        }
        if v > mx { mx = v; arg = k }
    }
    if mx == -.infinity { throw side.error(row: r, "all top-k values are −inf (no probability mass)") }
    input.argmaxVocab = side.index(row: r, slot: arg)
    // Raw tail at τ = 1.
    var tail = 0.0
    if side.kind != .logits {
        var known = 0.0
        for k in 0..<n { known += dexp(Double(x[k])) }
        if side.kind == .logprobs && !renormalizeInput && known > 1 + LossConfig.probabilitySumTolerance {
            throw side.error(row: r, "top-k probabilities sum to \(known) > 1 (set renormalize to accept)")
        }
        tail = Swift.max(0, 1 - known)
    }
    input.shift = Double(mx) * input.invTau
    var z = 0.0
    for k in 0..<n { z += dexp(Double(x[k]) * input.invTau - input.shift) }
    if policy == .tailBucket && tail > 0 {
        input.logTailWeight = dlog(tail) * input.invTau - input.shift
        input.logZ = dlog(z + dexp(input.logTailWeight))
    } else {
        input.logZ = dlog(z)
        if tail > 0 { input.logTailWeight = dlog(tail) * input.invTau - input.shift }
    }
    return input
}

/// Rejects rows whose softmax is undefined (+inf, all −inf, all NaN). A NaN
/// next to finite values is skipped by the scan and caught when the loss
/// sums turn NaN (`locateBad`).
@inline(__always)
func checkScan(_ side: SideView, row r: Int, _ x: UnsafePointer<Float>, _ n: Int, _ scan: RowScan) throws {
    if scan.max == .infinity || scan.max == -.infinity || scan.max.isNaN {
        if let (i, msg) = firstNonSoftmaxable(x, n) { throw side.error(row: r, vocabIndex: i, msg) }
        if scan.max == -.infinity { throw side.error(row: r, "every value in the row is −inf (no probability mass)") }
    }
}

/// One position where at least one side is top-k.
func topKRowLoss(
    teacher: SideView, student: SideView, row r: Int, scratch: WorkerScratch,
    config c: LossConfig, label: Int?
) throws -> RowOutput {
    let policy = c.topKTailPolicy
    let ti = try prepareTopKSide(
        teacher, row: r, buf: scratch.teacherBuf, tau: c.teacherTemperature,
        renormalizeInput: c.renormalize, policy: policy)
    let si = try prepareTopKSide(
        student, row: r, buf: scratch.studentBuf, tau: c.studentTemperature,
        renormalizeInput: c.renormalize, policy: policy)
    // Union of known indices: key = vocab << 21 | side << 20 | slot.
    scratch.keys.removeAll(keepingCapacity: true)
    for (sideBit, view) in [(0, teacher), (1, student)] where view.isTopK {
        for k in 0..<view.rowLength {
            let idx = view.index(row: r, slot: k)
            guard idx >= 0 && idx < view.vocab else {
                throw view.error(.indices, row: r, vocabIndex: k, "top-k index \(idx) is outside [0, \(view.vocab))")
            }
            scratch.keys.append(idx << 21 | sideBit << 20 | k)
        }
    }
    scratch.keys.sort()
    scratch.lp.removeAll(keepingCapacity: true)
    scratch.lq.removeAll(keepingCapacity: true)

    // Log-probability of vocab index `idx` (top-k slot `slot`, or −1 when the
    // side does not know it) for one side.
    func logProb(_ inp: TopKRowInput, slot: Int, vocab idx: Int) -> Double {
        if let x = inp.dense {
            return (Double(x[idx]) - Double(inp.scan.max)) * inp.invTau - inp.logS
        }
        guard slot >= 0, let known = inp.known else { return -.infinity }
        return Double(known[slot]) * inp.invTau - inp.shift - inp.logZ
    }

    var i = 0
    let keys = scratch.keys
    while i < keys.count {
        let idx = keys[i] >> 21
        var tSlot = -1, sSlot = -1
        var j = i
        while j < keys.count && keys[j] >> 21 == idx {
            let sideBit = (keys[j] >> 20) & 1
            let slot = keys[j] & 0xFFFFF
            if sideBit == 0 {
                if tSlot >= 0 { throw teacher.error(.indices, row: r, vocabIndex: slot, "duplicate top-k index \(idx)") }
                tSlot = slot
            } else {
                if sSlot >= 0 { throw student.error(.indices, row: r, vocabIndex: slot, "duplicate top-k index \(idx)") }
                sSlot = slot
            }
            j += 1
        }
        scratch.lp.append(logProb(ti, slot: tSlot, vocab: idx))
        scratch.lq.append(logProb(si, slot: sSlot, vocab: idx))
        i = j
    }

    // Mass of each side on U (its tempered full distribution).
    func massOnU(_ inp: TopKRowInput, _ logs: [Double]) -> Double {
        var s = 0.0
        for l in logs { s += dexp(l) }
        return s
    }
    var out = RowOutput()
    let massT = massOnU(ti, scratch.lp), massS = massOnU(si, scratch.lq)
    // Known indices covering the whole vocabulary leave nothing outside them: the bucket is an
    // empty outcome, and a top-k side's tail r is rounding in its values (1 − Σ p of k = V floats).
    // Giving that residue its own outcome would make the KL +∞ against a dense side with no mass
    // outside; it is renormalised away instead, as `.renormalize` does.
    let coversVocabulary = scratch.lp.count == teacher.vocab
    if coversVocabulary {
        out.teacherTail = Swift.max(0, 1 - massT)
        out.studentTail = Swift.max(0, 1 - massS)
    }
    func tailOf(_ inp: TopKRowInput, _ mass: Double) -> Double {
        if inp.dense != nil { return Swift.max(0, 1 - mass) }
        // Top-k side: its bucket's share of the tempered distribution.
        let zAll = dexp(inp.logZ)
        let wt = dexp(inp.logTailWeight)
        return policy == .tailBucket ? wt / zAll : wt / (zAll + wt)
    }
    if !coversVocabulary {
        out.teacherTail = tailOf(ti, massT)
        out.studentTail = tailOf(si, massS)
    }
    switch coversVocabulary ? .renormalize : policy {
    case .renormalize:
        let lt = dlog(massT), ls = dlog(massS)
        for k in scratch.lp.indices { scratch.lp[k] -= lt; scratch.lq[k] -= ls }
    case .tailBucket:
        func bucketLog(_ inp: TopKRowInput, _ mass: Double) -> Double {
            if inp.dense != nil { return mass >= 1 ? -.infinity : dlog1p(-mass) }
            return inp.logTailWeight - inp.logZ
        }
        scratch.lp.append(bucketLog(ti, massT))
        scratch.lq.append(bucketLog(si, massS))
    }
    let res = scratch.lp.withUnsafeBufferPointer { p in
        scratch.lq.withUnsafeBufferPointer { q in explicitLoss(lp: p, lq: q, config: c) }
    }
    out.teacherEntropy = res.hp
    out.studentEntropy = res.hq
    out.crossEntropy = res.hp + res.kl
    out.agree = ti.argmaxVocab == si.argmaxVocab
    let scale = c.softScale
    if c.name.descriptor.formula == .combined, let x = si.dense {
        let hard = hardLabelNLL(x, si.scan, student.rowLength, invTau: 1, label: label ?? 0)
        out.loss = weighted(c.alpha, hard) + weighted((1 - c.alpha) * scale, res.kl)
    } else {
        out.loss = weighted(scale, res.loss)
    }
    return out
}
