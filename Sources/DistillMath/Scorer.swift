import Dispatch
import DistillSync
import DistillTensor

/// Scores a student against a teacher over all N×T positions, in parallel.
public enum LossScorer {
    /// Computes `config.name` between `teacher` and `student`.
    ///
    /// - Parameters:
    ///   - teacher: may be nil only for `nll`.
    ///   - isCancelled: polled before every chunk of rows (from worker
    ///     threads); once it returns true the run stops and throws
    ///     `CancellationError`.
    ///   - progress: called after every chunk with the fraction of rows done,
    ///     strictly rising, serialised (never concurrently).
    /// - Throws: `LossError` for invalid input or config, `CancellationError`.
    public static func score(
        teacher: ModelOutputs?, student: ModelOutputs, config: LossConfig,
        isCancelled: @Sendable () -> Bool = { false },
        progress: @Sendable (Double) -> Void = { _ in }
    ) throws -> LossResult {
        try config.validate()
        let plan = try ScorePlan(teacher: teacher, student: student, config: config)
        return try plan.run(isCancelled: isCancelled, progress: progress)
    }
}

/// What the workers of one run share: rows are handed out in chunks from a
/// shared counter, one worker per core, so each worker allocates its scratch
/// buffers exactly once.
private struct RunState {
    var nextChunk = 0
    var rowsDone = 0
    var cancelled = false
    var error: (row: Int, error: Error)?
}

/// Output columns written by workers at disjoint row indices.
/// Unchecked: the buffers are written by one worker per row, and read after every worker has finished.
private struct Columns: @unchecked Sendable {
    let loss, hp, hq, ce, tailT, tailS: UnsafeMutableBufferPointer<Double>
    let valid, agree: UnsafeMutableBufferPointer<Bool>

    init(rows: Int) {
        func d() -> UnsafeMutableBufferPointer<Double> {
            let b = UnsafeMutableBufferPointer<Double>.allocate(capacity: Swift.max(rows, 1))
            b.initialize(repeating: 0)
            return b
        }
        func b() -> UnsafeMutableBufferPointer<Bool> {
            let x = UnsafeMutableBufferPointer<Bool>.allocate(capacity: Swift.max(rows, 1))
            x.initialize(repeating: false)
            return x
        }
        loss = d(); hp = d(); hq = d(); ce = d(); tailT = d(); tailS = d()
        valid = b(); agree = b()
    }

    func free() {
        for x in [loss, hp, hq, ce, tailT, tailS] { x.deallocate() }
        valid.deallocate(); agree.deallocate()
    }
}

struct ScorePlan: Sendable {
    let teacher: SideView?
    let student: SideView
    let config: LossConfig
    /// The traits of `config.name`.
    let loss: LossDescriptor
    let examples: Int
    let positions: Int
    let vocab: Int

    init(teacher t: ModelOutputs?, student s: ModelOutputs, config c: LossConfig) throws {
        config = c
        loss = c.name.descriptor
        student = try SideView(s, side: .student)
        if loss.needsTeacher {
            guard let t = t else {
                throw LossError(side: .teacher, parameter: .values, message: "loss \(c.name.rawValue) needs teacher outputs")
            }
            let tv = try SideView(t, side: .teacher)
            guard tv.examples == student.examples, tv.positions == student.positions else {
                throw LossError(
                    side: .student, parameter: .shape,
                    message:
                        "teacher has shape [N=\(tv.examples), T=\(tv.positions)] but student has [N=\(student.examples), T=\(student.positions)]"
                )
            }
            guard tv.vocab == student.vocab else {
                throw LossError(
                    side: .student, parameter: .vocab,
                    message: "teacher vocab size \(tv.vocab) differs from student vocab size \(student.vocab)")
            }
            teacher = tv
        } else {
            teacher = nil
        }
        examples = student.examples
        positions = student.positions
        vocab = student.vocab
        if loss.usesLabels {
            guard let l = c.labels else {
                throw LossError.config(.labels, "loss \(c.name.rawValue) needs labels [N, T]")
            }
            guard l.dtype == .int32 || l.dtype == .int64 else {
                throw LossError.config(.labels, "labels must be int32 or int64, got \(l.dtype.rawValue)")
            }
            guard l.shape == [examples, positions] else {
                throw LossError.config(.labels, "labels have shape \(l.shape), expected [\(examples), \(positions)]")
            }
            if student.isTopK {
                throw LossError(
                    side: .student, parameter: .layout,
                    message: "loss \(c.name.rawValue) needs dense student outputs (the label's probability is unknown for top-k)")
            }
        }
        if loss.needsDenseLogits {
            for v in [teacher!, student] {
                if v.isTopK { throw LossError(side: v.side, parameter: .layout, message: "logit_mse needs dense outputs") }
                if v.kind != .logits {
                    throw LossError(side: v.side, parameter: .kind, message: "logit_mse needs logits, got \(v.kind.rawValue)")
                }
            }
        }
    }

    /// Losses whose second pass reuses the exponentials of the fused pass.
    var needsStore: Bool { loss.secondPass != .none }

    /// Losses that read KL(q‖p) from the fused pass: the reverse KL, and a
    /// mixture whose m is p.
    var needsReverseSum: Bool {
        loss.readsReverseKL || (loss.mixture != nil && config.mixtureWeight == 1)
    }

    func label(_ r: Int) -> Int? {
        guard loss.usesLabels, let l = config.labels else { return nil }
        if l.dtype == .int32 { return Int(l.storage.base.loadUnaligned(fromByteOffset: r * 4, as: Int32.self)) }
        return Int(l.storage.base.loadUnaligned(fromByteOffset: r * 8, as: Int64.self))
    }

    func labelError(_ r: Int, _ y: Int) -> LossError {
        LossError(
            side: .config, parameter: .labels, example: r / positions, position: r % positions,
            message: "label \(y) is outside [0, \(vocab)) (use a negative value such as -100 to ignore a position)")
    }

    /// Computes one valid position.
    @inline(__always)
    func process(row r: Int, label y: Int?, scratch: WorkerScratch, next: Int? = nil) throws -> RowOutput {
        let c = config
        if let y = y, y >= vocab { throw labelError(r, y) }
        if !loss.needsTeacher {
            let x = try student.logValueRow(r, scratch: scratch.studentBuf, renormalize: c.renormalize)
            let scan = scanRow(x, vocab)
            try checkScan(student, row: r, x, vocab, scan)
            try checkLogProbs(student, row: r, x, scan)
            var out = RowOutput()
            out.loss = hardLabelNLL(x, scan, vocab, invTau: Float(1 / c.studentTemperature), label: y ?? 0)
            if out.loss.isNaN { try locateBad(student, row: r, x); out.loss = 0 }
            return out
        }
        let t = teacher!
        if t.isTopK || student.isTopK {
            return try topKRowLoss(teacher: t, student: student, row: r, scratch: scratch, config: c, label: y)
        }
        let xt = try t.logValueRow(r, scratch: scratch.teacherBuf, renormalize: c.renormalize)
        let xs = try student.logValueRow(r, scratch: scratch.studentBuf, renormalize: c.renormalize)
        let scanT: RowScan, scanS: RowScan, sums: KLSums?
        let logitsOnly = loss.needsDenseLogits
        let inDouble = !logitsOnly && c.softScale > LossConfig.float32SoftScaleLimit
        if logitsOnly || inDouble {
            scanT = scanRow(xt, vocab)
            scanS = scanRow(xs, vocab)
            sums = nil
        } else {
            (sums, scanT, scanS) = klFused(
                xt, xs, vocab, scaleT: LossConfig.log2Scale(c.teacherTemperature),
                scaleS: LossConfig.log2Scale(c.studentTemperature), store: needsStore ? scratch.expStore : nil,
                reverse: needsReverseSum)
        }
        try checkScan(t, row: r, xt, vocab, scanT)
        try checkScan(student, row: r, xs, vocab, scanS)
        try checkLogProbs(t, row: r, xt, scanT)
        try checkLogProbs(student, row: r, xs, scanS)
        if inDouble || (!logitsOnly && !fusedExponentsAreExact(scanT, scanS)) {
            return doubleRowLoss(xt: xt, scanT: scanT, xs: xs, scanS: scanS, n: vocab, config: c, label: y)
        }
        var prefetch: RowPrefetch?
        if let nr = next {
            let (pt, st) = t.rawRow(nr), (ps, ss) = student.rawRow(nr)
            prefetch = RowPrefetch(t: pt, s: ps, tShift: st, sShift: ss)
        }
        let out = denseRowLoss(
            xt: xt, scanT: scanT, xs: xs, scanS: scanS, sums: sums, n: vocab, config: c, formula: loss.formula, label: y,
            store: needsStore ? scratch.expStore : nil, next: prefetch)
        if out.loss.isNaN || (sums.map { !$0.isFinite } ?? false) {
            try locateBad(t, row: r, xt)
            try locateBad(student, row: r, xs)
            let exact = doubleRowLoss(xt: xt, scanT: scanT, xs: xs, scanS: scanS, n: vocab, config: c, label: y)
            if exact.loss.isNaN { throw t.error(row: r, "internal: loss is NaN for finite inputs") }
            return exact
        }
        return out
    }

    /// The fused pass forms each exponent as x·k − fl(M·k) with k = log2(e)/τ. The
    /// rounding of fl(M·k) shifts a whole row's exponents by up to half its ulp,
    /// which cancels in the normalisation only while the shift is a small fraction:
    /// beyond |M|·k = 2^21 (a quarter at most) the row's largest exponent leaves
    /// the kernel's range and its terms are lost. Such rows (logits in the
    /// thousands at τ = 1e-4, say) are computed in Double instead.
    @inline(__always)
    func fusedExponentsAreExact(_ scanT: RowScan, _ scanS: RowScan) -> Bool {
        let limit: Float = 0x1p21
        return abs(scanT.max) * LossConfig.log2Scale(config.teacherTemperature) <= limit
            && abs(scanS.max) * LossConfig.log2Scale(config.studentTemperature) <= limit
    }

    /// Log-probability rows must be ≤ 0 and, unless renormalising, their
    /// exponentials must sum to 1 within 1e-3.
    @inline(__always)
    func checkLogProbs(_ side: SideView, row r: Int, _ x: UnsafePointer<Float>, _ scan: RowScan) throws {
        guard side.kind == .logprobs else { return }
        if scan.max > LossConfig.logProbTolerance {
            throw side.error(row: r, vocabIndex: scan.argmax, "log-probability \(scan.max) is > 0")
        }
        if !config.renormalize {
            let s = dexp(Double(scan.max)) * expSum(x, side.rowLength, max: scan.max, invTau: 1)
            if abs(s - 1) > LossConfig.probabilitySumTolerance {
                throw side.error(row: r, "exp(log-probabilities) sums to \(s), not 1 (tolerance 1e-3; set renormalize to accept)")
            }
        }
    }

    func locateBad(_ side: SideView, row r: Int, _ x: UnsafePointer<Float>) throws {
        if let (i, msg) = firstNonSoftmaxable(x, side.rowLength) { throw side.error(row: r, vocabIndex: i, msg) }
    }

    func rowIsValid(_ r: Int, label: Int?) -> Bool {
        if !student.isValid(row: r) { return false }
        if let t = teacher, !t.isValid(row: r) { return false }
        if let y = label, y < 0 { return false }
        return true
    }

    func run(isCancelled: @Sendable () -> Bool, progress: @Sendable (Double) -> Void) throws -> LossResult {
        let rows = examples * positions
        let cols = Columns(rows: rows)
        defer { cols.free() }
        let chunkRows = Swift.max(1, (rows + 63) / 64)
        let chunks = (rows + chunkRows - 1) / chunkRows
        // Tiny jobs are not worth waking a second core for.
        let work = rows * Swift.max(vocab, 1)
        let workers = Swift.max(1, Swift.min(onlineProcessorCount(), chunks, work < 1 << 16 ? 1 : Int.max))
        let state = Mutex(RunState())
        let tLen = teacher?.rowLength ?? 0, sLen = student.rowLength

        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            let scratch = WorkerScratch(
                teacherLength: tLen, studentLength: sLen,
                expStoreLength: needsStore && !(teacher?.isTopK ?? true) && !student.isTopK ? vocab : 0)
            while true {
                if isCancelled() {
                    state.withLock { $0.cancelled = true }
                    return
                }
                let chunk = state.withLock { s -> Int in
                    if s.cancelled || s.error != nil { return -1 }
                    let c = s.nextChunk
                    s.nextChunk += 1
                    return c < chunks ? c : -1
                }
                if chunk < 0 { return }
                let start = chunk * chunkRows, end = Swift.min(rows, start + chunkRows)
                for r in start..<end {
                    let y = label(r)
                    guard rowIsValid(r, label: y) else { continue }
                    do {
                        let out = try process(row: r, label: y, scratch: scratch, next: r + 1 < end ? r + 1 : nil)
                        cols.valid[r] = true
                        cols.loss[r] = out.loss
                        cols.hp[r] = out.teacherEntropy
                        cols.hq[r] = out.studentEntropy
                        cols.ce[r] = out.crossEntropy
                        cols.agree[r] = out.agree
                        cols.tailT[r] = out.teacherTail
                        cols.tailS[r] = out.studentTail
                    } catch {
                        state.withLock { s in
                            if s.error == nil || s.error!.row > r { s.error = (r, error) }
                        }
                        return
                    }
                }
                state.withLock { s in
                    s.rowsDone += end - start
                    progress(Double(s.rowsDone) / Double(rows))
                }
            }
        }
        let final = state.withLock { $0 }
        if let e = final.error { throw e.error }
        if final.cancelled && final.rowsDone < rows { throw CancellationError() }
        return assemble(cols, rows: rows)
    }

    private func assemble(_ cols: Columns, rows: Int) -> LossResult {
        let valid = Array(cols.valid)
        let perPosition = Array(cols.loss)
        let red = ReducedLosses(perPosition: perPosition, valid: valid, examples: examples, positions: positions)
        let (reduced, aggregate) = red.reduced(config.reduction, perPosition: perPosition)
        var hp = [Double](repeating: 0, count: rows), hq = hp
        var sumHp = 0.0, sumHq = 0.0, sumCe = 0.0, nH = 0, nQ = 0, nC = 0, agree = 0
        var sumTT = 0.0, maxTT = 0.0, sumTS = 0.0, maxTS = 0.0
        for r in 0..<rows where valid[r] {
            if !cols.hp[r].isNaN { hp[r] = cols.hp[r]; sumHp += hp[r]; nH += 1 }
            if !cols.hq[r].isNaN { hq[r] = cols.hq[r]; sumHq += hq[r]; nQ += 1 }
            if !cols.ce[r].isNaN { sumCe += cols.ce[r]; nC += 1 }
            if cols.agree[r] { agree += 1 }
            sumTT += cols.tailT[r]; maxTT = Swift.max(maxTT, cols.tailT[r])
            sumTS += cols.tailS[r]; maxTS = Swift.max(maxTS, cols.tailS[r])
        }
        let nv = red.validPositions
        let anyTopK = (teacher?.isTopK ?? false) || student.isTopK
        let extras = LossExtras(
            meanTeacherEntropy: nH > 0 ? sumHp / Double(nH) : nil,
            meanStudentEntropy: nQ > 0 ? sumHq / Double(nQ) : nil,
            meanCrossEntropy: nC > 0 ? sumCe / Double(nC) : nil,
            teacherEntropy: hp, studentEntropy: hq,
            top1Agreement: loss.needsTeacher ? agree : 0,
            top1AgreementRate: nv > 0 && loss.needsTeacher ? Double(agree) / Double(nv) : 0,
            tailPolicy: anyTopK ? config.topKTailPolicy : nil,
            meanTeacherTailMass: nv > 0 ? sumTT / Double(nv) : 0, maxTeacherTailMass: maxTT,
            meanStudentTailMass: nv > 0 ? sumTS / Double(nv) : 0, maxStudentTailMass: maxTS,
            entropyCounts: (nH, nQ, nC))
        return LossResult(
            name: config.name, reduction: config.reduction, examples: examples, positions: positions,
            perPosition: perPosition, valid: valid, perSequenceSum: red.sequenceSums,
            perSequenceMean: red.sequenceMeans, validPerSequence: red.validPerSequence,
            reduced: reduced, aggregate: aggregate, validPositions: nv, extras: extras)
    }
}
