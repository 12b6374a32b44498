/// The one vector width of the kernels: `KVec` and its integer and
/// half-precision lanes (`KIVec`, `KUVec`, `KHVec`) are declared here and
/// nowhere else.
///
/// `KVec` is the width of the streaming kernels, chosen per build of this
/// source (see Package.swift):
///
/// - AVX2 (the default on x86-64): eight lanes, one ymm register.
/// - AVX-512 (`DISTILL_KERNELS_AVX512`): sixteen lanes, one zmm register.
///   On Zen 4 a zmm operation runs as two 256-bit halves, so the arithmetic
///   rate is the same; the gain is that each instruction, and each scheduler
///   slot, covers twice the lanes, and the exponentials' long dependency
///   chains are what limit these loops. The 32 vector registers also keep
///   every constant and accumulator out of memory.
#if DISTILL_KERNELS_AVX512
    typealias KVec = SIMD16<Float>
    typealias KIVec = SIMD16<Int32>
    typealias KUVec = SIMD16<UInt32>
    typealias KHVec = SIMD16<UInt16>
#else
    typealias KVec = SIMD8<Float>
    typealias KIVec = SIMD8<Int32>
    typealias KUVec = SIMD8<UInt32>
    typealias KHVec = SIMD8<UInt16>
#endif
