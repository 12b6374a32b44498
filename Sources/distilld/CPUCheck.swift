import Foundation

/// The numeric core is built for AVX2 + FMA on x86-64 (see Package.swift). Running
/// it on an older CPU would die with SIGILL in the middle of a request; checking
/// here turns that into one clear sentence at start-up.
enum CPUCheck {
    static func requireBuildFeatures() {
        #if DISTILLD_REQUIRES_AVX2
            guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
                let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
            else { return }
            let set = Set(flags.split(separator: " ").map(String.init))
            let missing = ["avx2", "fma"].filter { !set.contains($0) }
            if !missing.isEmpty {
                FileHandle.standardError.write(
                    Data(
                        ("distilld: this build needs a CPU with \(missing.joined(separator: " and ")); "
                            + "rebuild with DISTILLD_PORTABLE=1 for this machine\n").utf8))
                exit(70)
            }
        #endif
    }
}
