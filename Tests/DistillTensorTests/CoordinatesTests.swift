import DistillTensor
import Testing

/// `Tensor.coordinates(ofElement:in:)`, which names the element an error is about
/// (`[2][0][1]`), is the inverse of row-major flattening.
struct CoordinatesTests {
    @Test func coordinatesRavelBackToTheirOffset() {
        for shape in [[4], [3, 5], [2, 3, 4], [2, 1, 3, 2]] {
            let count = shape.reduce(1, *)
            var seen = Set<[Int]>()
            for flat in 0..<count {
                let c = Tensor.coordinates(ofElement: flat, in: shape)
                #expect(c.count == shape.count)
                #expect(zip(c, shape).allSatisfy { $0 >= 0 && $0 < $1 })
                #expect(zip(c, shape).reduce(0) { $0 * $1.1 + $1.0 } == flat)
                seen.insert(c)
            }
            #expect(seen.count == count)
        }
        #expect(Tensor.coordinates(ofElement: 7, in: [2, 3, 4]) == [0, 1, 3])
    }

    /// An error about an empty array must not trap on a division by its zero-sized dimension.
    @Test func anEmptyDimensionCountsAsOne() {
        #expect(Tensor.coordinates(ofElement: 5, in: [0, 3]) == [0, 2])
    }
}
