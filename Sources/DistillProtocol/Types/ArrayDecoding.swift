import DistillJSON
import DistillTensor

/// Turns request fields into tensors: nested JSON arrays of numbers, or the
/// binary form `{"dtype", "shape", "data"}` (Protocol/README.md, "Binary arrays").
///
/// - Important: this reads every element, so it runs in the handler, on the worker: request
///   types keep inline arrays as `Field`s and decode them once, when the work starts.
public enum ArrayDecoding {
    public static let binaryDTypes: [ScalarType] = [.float32, .float16, .bfloat16, .float64, .int32, .int64]

    /// A numeric tensor of rank 1…`maxRank`. Nested JSON is read as float32 (or int64
    /// when `integers`); the binary form keeps its dtype.
    public static func tensor(_ field: Field, maxRank: Int = 3, integers: Bool = false) throws -> Tensor {
        if field.json.isObject {
            return try binary(field, maxRank: maxRank)
        }
        guard field.json.isArray else {
            throw field.fail("must be an array of numbers or a binary array object, got \(field.json.kindDescription)")
        }
        do {
            if integers {
                let (values, shape) = try field.json.flattenedIntegers(maxRank: maxRank)
                return Tensor(int64: values, shape: shape)
            }
            let (values, shape) = try field.json.flattenedNumbers(maxRank: maxRank)
            return Tensor(float32: values, shape: shape)
        } catch let error as NumericArrayError {
            throw ResponseError.invalidParams(field: field.path + error.path, error.message)
        }
    }

    static func binary(_ field: Field, maxRank: Int) throws -> Tensor {
        try field.rejectUnknownKeys(["dtype", "shape", "data"])
        let dtypeName = try field.required("dtype").oneOf(binaryDTypes.map(\.rawValue))
        let dtype = ScalarType(rawValue: dtypeName)!
        let shapeField = try field.required("shape")
        let dims = try shapeField.array()
        guard (1...maxRank).contains(dims.count) else {
            throw shapeField.fail("must have 1 to \(maxRank) dimensions, got \(dims.count)")
        }
        let shape = try dims.map { try $0.int(min: 0) }
        var count = 1
        for d in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, product <= Int(Int32.max) * 16 else { throw shapeField.fail("describes too many elements") }
            count = product
        }
        let expected = count * dtype.byteWidth
        let dataField = try field.required("data")
        guard dataField.json.stringValue != nil else {
            throw dataField.fail("must be a base64 string, got \(dataField.json.kindDescription)")
        }
        let storage: TensorStorage = try dataField.json.withStringBytes { encoded in
            guard let length = Base64.decodedLength(encoded) else {
                throw dataField.fail("is not padded base64: its length \(encoded.count) is not a multiple of 4")
            }
            guard length == expected else {
                throw dataField.fail(
                    "holds \(length) bytes but shape \(shape) of \(dtypeName) needs \(expected)",
                    extra: [("expectedBytes", JSON(expected)), ("actualBytes", JSON(length))])
            }
            return try TensorStorage(byteCount: length) { out in
                if let bad = Base64.decode(encoded, into: out) {
                    throw dataField.fail("is not base64: bad character at offset \(bad)")
                }
            }
        }!
        return try Tensor(storage: storage, dtype: dtype, shape: shape)
    }
}
