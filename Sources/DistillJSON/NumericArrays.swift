import CJansson
import DistillTensor

/// A nested JSON array that is not a rectangular array of numbers.
public struct NumericArrayError: Error, Sendable {
    /// Where, relative to the array: "[3][1]".
    public let path: String
    public let message: String
}

extension JSON {
    /// Reads a rectangular nested array of numbers straight out of jansson into
    /// a flat row-major buffer, without a Swift wrapper per element.
    ///
    /// The strings "Infinity", "-Infinity" and "NaN" are read as the matching
    /// non-finite values (JSON cannot spell them); validation of what they mean
    /// is the loss engine's job.
    public func flattenedNumbers(maxRank: Int = 4) throws -> (values: [Float], shape: [Int]) {
        var shape: [Int] = []
        var probe: UnsafeMutablePointer<json_t>? = raw
        while let p = probe, cj_is_array(p) != 0 {
            let n = json_array_size(p)
            shape.append(n)
            if shape.count > maxRank {
                throw NumericArrayError(path: "", message: "array nests deeper than \(maxRank) levels")
            }
            probe = n > 0 ? json_array_get(p, 0) : nil
        }
        guard !shape.isEmpty else {
            throw NumericArrayError(path: "", message: "expected an array of numbers, got \(kindDescription)")
        }
        let total = try JSON.elementCount(shape)
        // The shape comes from the first element at each depth, so it may promise far
        // more than the array holds ([[1e5 numbers], [0], [0], ...]): grow with what
        // the walk finds, reserving at most 16 MiB up front.
        var values: [Float] = []
        values.reserveCapacity(min(total, 1 << 22))
        var path: [Int] = []
        do {
            func walk(_ node: UnsafeMutablePointer<json_t>, depth: Int) throws {
                if depth == shape.count {
                    values.append(try JSON.scalar(node, path: path))
                    return
                }
                guard cj_is_array(node) != 0 else {
                    throw NumericArrayError(
                        path: JSON.render(path),
                        message: "expected an array of length \(shape[depth]) at depth \(depth + 1)")
                }
                let n = json_array_size(node)
                guard n == shape[depth] else {
                    throw NumericArrayError(
                        path: JSON.render(path),
                        message: "ragged array: length \(n) where \(shape[depth]) was expected")
                }
                for i in 0..<n {
                    path.append(i)
                    try walk(json_array_get(node, i)!, depth: depth + 1)
                    path.removeLast()
                }
            }
            try walk(raw, depth: 0)
        }
        return (values, shape)
    }

    /// The product of `shape`, refusing one that does not fit in an Int.
    static func elementCount(_ shape: [Int]) throws -> Int {
        var total = 1
        for d in shape {
            let (m, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow else { throw NumericArrayError(path: "", message: "the array's shape \(shape) is too large") }
            total = m
        }
        return total
    }

    /// As `flattenedNumbers`, for integers (indices, labels).
    public func flattenedIntegers(maxRank: Int = 4) throws -> (values: [Int64], shape: [Int]) {
        let (floats, shape) = try flattenedNumbersAsDouble(maxRank: maxRank)
        var ints = [Int64](repeating: 0, count: floats.count)
        for (i, v) in floats.enumerated() {
            guard v.isFinite, v == v.rounded(), abs(v) < 9.0e15 else {
                let at = Tensor.coordinates(ofElement: i, in: shape)
                throw NumericArrayError(path: JSON.render(at), message: "expected an integer, got \(v)")
            }
            ints[i] = Int64(v)
        }
        return (ints, shape)
    }

    private func flattenedNumbersAsDouble(maxRank: Int) throws -> (values: [Double], shape: [Int]) {
        // Integers are rare and small; reuse the float walk's shape logic via Double scalars.
        var shape: [Int] = []
        var probe: UnsafeMutablePointer<json_t>? = raw
        while let p = probe, cj_is_array(p) != 0 {
            let n = json_array_size(p)
            shape.append(n)
            if shape.count > maxRank { throw NumericArrayError(path: "", message: "array nests deeper than \(maxRank) levels") }
            probe = n > 0 ? json_array_get(p, 0) : nil
        }
        guard !shape.isEmpty else {
            throw NumericArrayError(path: "", message: "expected an array of integers, got \(kindDescription)")
        }
        var out: [Double] = []
        out.reserveCapacity(min(try JSON.elementCount(shape), 1 << 21))
        var path: [Int] = []
        func walk(_ node: UnsafeMutablePointer<json_t>, depth: Int) throws {
            if depth == shape.count {
                guard cj_is_integer(node) != 0 || cj_is_real(node) != 0 else {
                    throw NumericArrayError(path: JSON.render(path), message: "expected an integer")
                }
                out.append(json_number_value(node))
                return
            }
            guard cj_is_array(node) != 0, json_array_size(node) == shape[depth] else {
                throw NumericArrayError(path: JSON.render(path), message: "ragged array where length \(shape[depth]) was expected")
            }
            for i in 0..<shape[depth] {
                path.append(i)
                try walk(json_array_get(node, i)!, depth: depth + 1)
                path.removeLast()
            }
        }
        try walk(raw, depth: 0)
        return (out, shape)
    }

    @inline(__always)
    private static func scalar(_ node: UnsafeMutablePointer<json_t>, path: [Int]) throws -> Float {
        let p = node
        if cj_is_real(p) != 0 || cj_is_integer(p) != 0 { return Float(json_number_value(p)) }
        if cj_is_string(p) != 0, let s = json_string_value(p) {
            switch String(cString: s) {
            case "Infinity": return .infinity
            case "-Infinity": return -.infinity
            case "NaN": return .nan
            default: break
            }
        }
        throw NumericArrayError(path: render(path), message: "expected a number")
    }

    static func render(_ path: [Int]) -> String { path.map { "[\($0)]" }.joined() }
}
