import DistillJSON
import DistillProtocol
import DistillStore

extension ResponseError {
    /// A store failure as a reply: file problems are LoadFailed (1004) with the file,
    /// line or tensor in `data`; the rest map onto their own codes. A field the store
    /// names (relative to the source it was given) is placed under `base`, the JSON
    /// path of the member that described that source.
    static func store(_ error: StoreError, wantTeacher: Bool? = nil, name: String? = nil, under base: String = "params")
        -> ResponseError
    {
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
        case _ where error.field != nil && error.file == nil: code = .invalidParams
        default: code = .loadFailed
        }
        guard let field = error.field else { return ResponseError(code: code, message: error.message, data: data) }
        // The store names the member relative to the source it read; the reply names it in the request.
        let path = base + "." + field
        data["field"] = JSON(path)
        return ResponseError(code: code, message: "\(path): \(error.message)", data: data)
    }
}

/// Runs a store operation, turning its errors into replies; fields are named under `base`.
func storeCall<T>(wantTeacher: Bool? = nil, name: String? = nil, under base: String = "params", _ body: () throws -> T)
    throws -> T
{
    do {
        return try body()
    } catch let error as StoreError {
        throw ResponseError.store(error, wantTeacher: wantTeacher, name: name, under: base)
    }
}

extension Registry {
    /// A loaded teacher, or UnknownTeacher (1001) with `data.name`.
    func teacher(named name: String) throws -> TeacherEntry {
        try storeCall(wantTeacher: true, name: name) { try teacher(name) }
    }

    /// A loaded teacher about to be read: as `teacher(named:)`, and LoadFailed
    /// (1004, `data.reason` "fileChanged", `data.file`) when a file it reads from
    /// changed since it was loaded.
    func teacherForUse(named name: String) throws -> TeacherEntry {
        let entry = try teacher(named: name)
        try storeCall(wantTeacher: true, name: name) { try entry.checkFiles() }
        return entry
    }

    /// A loaded dataset, or UnknownDataset (1002) with `data.name`.
    func dataset(named name: String) throws -> DatasetEntry {
        try storeCall(wantTeacher: false, name: name) { try dataset(name) }
    }
}

/// Runs a handler that reads loaded files so that a file truncated while it is
/// read fails the request (LoadFailed, `data.reason` "fileChanged") instead of
/// answering from the zeros that stood in for the missing pages.
func readingFiles<R: RequestType>(_ handler: @escaping @Sendable (R, RequestContext) throws -> R.Response)
    -> @Sendable (R, RequestContext) throws -> R.Response
{
    { request, context in try storeCall { try FileGuard.run { try handler(request, context) } } }
}
