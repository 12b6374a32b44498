import DistillJSON
import Foundation

/// Writes arrays in the binary form requests may use (`{"dtype", "shape", "data"}`, Protocol/README.md
/// "Binary arrays"): little-endian values in row-major order, standard base64.
public enum BinaryArray {
    public static func float32(_ values: [Float], shape: [Int]) -> JSON {
        precondition(shape.reduce(1, *) == values.count)
        let data = values.withUnsafeBufferPointer { Data(buffer: $0) }
        // Float's in-memory order is little-endian on every platform distilld builds for (x86-64, arm64).
        return JSON.object([
            ("dtype", "float32"), ("shape", JSON.array(shape.map { JSON($0) })), ("data", JSON(data.base64EncodedString())),
        ])
    }
}
