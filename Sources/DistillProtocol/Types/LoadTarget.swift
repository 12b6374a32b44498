/// Where a load goes: the name (non-empty) and whether it may replace what is loaded under it
/// (`params.name`, `params.replace`, default false), in `teacher/load` and `dataset/load`.
public struct LoadTarget: Sendable, Equatable {
    public let name: String
    public let replace: Bool

    public init(_ params: Field) throws {
        name = try params.required("name").nonEmptyString()
        replace = try params.child("replace")?.bool() ?? false
    }

    /// A load of a name is an update of that name.
    public var ordering: Ordering { .updating([name]) }
}
