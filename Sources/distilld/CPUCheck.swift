import Foundation

/// The numeric core is built for AVX2 + FMA, or AVX-512 when the building machine
/// has it, on x86-64 (see Package.swift). Running
/// it on an older CPU would die with SIGILL in the middle of a request; checking
/// here turns that into one clear sentence at start-up.
enum CPUCheck {
    static func requireBuildFeatures() {
        #if DISTILLD_REQUIRES_AVX2
            guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
                let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
            else { return }
            let set = Set(flags.split(separator: " ").map(String.init))
            var needed = ["avx2", "fma"]
            var rebuild = "DISTILLD_PORTABLE=1"
            #if DISTILLD_REQUIRES_AVX512
                // Built on an AVX-512 machine (see Package.swift).
                needed += ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
                rebuild = "DISTILLD_KERNELS=avx2 (or DISTILLD_PORTABLE=1)"
            #endif
            let missing = needed.filter { !set.contains($0) }
            if !missing.isEmpty {
                FileHandle.standardError.write(
                    Data(
                        ("distilld: this build needs a CPU with \(missing.joined(separator: ", ")); "
                            + "rebuild with \(rebuild) for this machine\n").utf8))
                exit(70)
            }
        #endif
    }
}
