#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Double-precision libm wrappers, so the rest of the module needs no
/// platform import.
@inline(__always) func dlog(_ x: Double) -> Double { log(x) }
@inline(__always) func dexp(_ x: Double) -> Double { exp(x) }
@inline(__always) func dexp2(_ x: Double) -> Double { exp2(x) }
/// ln 2 and log2(e) in Double: the fused KL pass works in base 2.
let dLn2 = 0.6931471805599453
let dLog2e = 1.4426950408889634
@inline(__always) func dlog1p(_ x: Double) -> Double { log1p(x) }

/// Online processors, for sizing the worker pool.
func onlineProcessorCount() -> Int {
    #if canImport(Glibc) || canImport(Musl) || canImport(Darwin)
        return Swift.max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    #else
        return 1
    #endif
}
