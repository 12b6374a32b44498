import DistillMath
import DistillTestSupport
import Testing

/// `ExactSum` must return the double nearest the exact sum: checked where the exact sum is known
/// independently (integer arithmetic on a grid of doubles), on the half-way cases of rounding, for
/// order independence, and for non-finite terms.
struct ExactSumTests {
    @Test func equalsTheIntegerSumOnAGridEvenWithHugeCancellingTerms() {
        var r = Rng(11)
        let scale = 0x1p-20
        for trial in 0..<50 {
            var ints: [Int64] = (0..<500).map { _ in Int64(r.int(1 << 41)) - (1 << 40) }
            var values = ints.map { Double($0) * scale }
            // Terms far larger than the answer that cancel exactly ruin a plain running sum.
            for k in 0..<20 {
                let big = Double(1 + r.int(1000)) * 0x1p70 * (k % 2 == 0 ? 1 : -1)
                values.insert(big, at: r.int(values.count))
                values.insert(-big, at: r.int(values.count))
                ints.append(0)
            }
            let exact = Double(ints.reduce(0, +)) * scale
            #expect(values.exactSum == exact, "trial \(trial)")
        }
    }

    @Test func roundsOnceToNearestWithTiesToEven() {
        let ulp = 0x1p-52
        // Exactly representable: 1 + 2^-52, which a plain sum loses.
        #expect([1.0, 0x1p-53, 0x1p-53].exactSum == 1 + ulp)
        #expect([1.0, 0x1p-53, 0x1p-53].reduce(0, +) == 1)
        // Half-way between two doubles: to the even one.
        #expect([1.0, 0x1p-53].exactSum == 1)
        #expect([1 + ulp, 0x1p-53].exactSum == 1 + 2 * ulp)
        // Just above and just below half-way: the smallest term decides.
        #expect([1.0, 0x1p-53, 0x1p-106].exactSum == 1 + ulp)
        #expect([1 + ulp, 0x1p-53, -0x1p-106].exactSum == 1 + ulp)
    }

    @Test func doesNotDependOnTheOrderOfTheTerms() {
        var r = Rng(5)
        let values = (0..<300).map { i in r.normal() * Double(1 << (i % 40)) * (i % 7 == 0 ? 1e-12 : 1) }
        let reference = values.exactSum
        var plainSums: Set<Double> = []
        for _ in 0..<30 {
            let shuffled = values.shuffled(using: &r)
            #expect(shuffled.exactSum == reference)
            plainSums.insert(shuffled.reduce(0, +))
        }
        // The check has teeth: a plain sum of these terms does depend on the order.
        #expect(plainSums.count > 1)
    }

    @Test func nonFiniteTermsSumPlainly() {
        #expect([1.0, .infinity, 2].exactSum == .infinity)
        #expect([Double.infinity, -.infinity].exactSum.isNaN)
        #expect([1.0, .nan].exactSum.isNaN)
        #expect([Double]().exactSum == 0)
        #expect([Double.greatestFiniteMagnitude, .greatestFiniteMagnitude].exactSum == .infinity)
    }
}
