import DistillJSON
import DistillProtocol
import DistillStore

extension ResponseError {
    /// A store failure as a reply: file problems are LoadFailed (1004) with the file,
    /// line or tensor in `data`; the rest map onto their own codes.
    static func store(_ error: StoreError, wantTeacher: Bool? = nil, name: String? = nil) -> ResponseError {
        let data: JSON = ["reason": JSON(error.code.rawValue)]
        if let name { data["name"] = JSON(name) }
        if let file = error.file { data["file"] = JSON(file) }
        if let line = error.line { data["line"] = JSON(line) }
        if let tensor = error.tensor { data["tensor"] = JSON(tensor) }
        for (k, v) in error.numbers.sorted(by: { $0.key < $1.key }) { data[k] = JSON(v) }
        let code: ErrorCode
        switch error.code {
        case .nameExists: code = .nameExists
        case .budgetExceeded: code = .limitExceeded
        case .unknownName: code = wantTeacher == false ? .unknownDataset : .unknownTeacher
        case .shapeMismatch where error.file == nil: code = .shapeMismatch
        default: code = .loadFailed
        }
        return ResponseError(code: code, message: error.message, data: data)
    }
}

/// Runs a store operation, turning its errors into replies.
func storeCall<T>(wantTeacher: Bool? = nil, name: String? = nil, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as StoreError {
        throw ResponseError.store(error, wantTeacher: wantTeacher, name: name)
    }
}

extension Registry {
    /// A loaded teacher, or UnknownTeacher (1001) with `data.name`.
    func teacher(named name: String) throws -> TeacherEntry {
        try storeCall(wantTeacher: true, name: name) { try teacher(name) }
    }

    /// A loaded dataset, or UnknownDataset (1002) with `data.name`.
    func dataset(named name: String) throws -> DatasetEntry {
        try storeCall(wantTeacher: false, name: name) { try dataset(name) }
    }
}
