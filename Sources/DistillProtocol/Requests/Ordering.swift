/// How a request is ordered against the others of its session.
///
/// A request reads or updates some loaded names, or all of them. An update waits for every
/// earlier request that uses one of its names and holds back later ones that do; reads of the
/// same names run together, and requests with no name in common do not wait for each other. So a
/// script may send `teacher/load` and `distill/score` back to back and the score sees the teacher,
/// while a load of `a` does not wait for an analysis of `b`. `names == nil` means every name
/// (lifecycle requests, lists and replies decided when a request was read).
public struct Ordering: Sendable, Hashable, CustomStringConvertible {
    public enum Access: Sendable, Hashable {
        case read, update
    }

    public let access: Access
    /// The names read or changed; nil for all of them.
    public let names: Set<String>?

    public init(_ access: Access, names: Set<String>?) {
        self.access = access
        self.names = names
    }

    /// A read of everything: waits for every earlier update.
    public static let read = Ordering(.read, names: nil)
    /// A barrier: waits for every earlier request and holds back every later one.
    public static let update = Ordering(.update, names: nil)

    public static func reading(_ names: some Sequence<String>) -> Ordering { Ordering(.read, names: Set(names)) }
    public static func updating(_ names: some Sequence<String>) -> Ordering { Ordering(.update, names: Set(names)) }

    /// Whether two requests must run one after the other: they share a name (or one of them
    /// takes every name) and at least one of them changes it.
    public func conflicts(with other: Ordering) -> Bool {
        if access == .read && other.access == .read { return false }
        guard let mine = names, let theirs = other.names else { return true }
        return !mine.isDisjoint(with: theirs)
    }

    public var description: String {
        let what = names.map { $0.sorted().joined(separator: ", ") } ?? "everything"
        return "\(access == .read ? "read" : "update") of \(what)"
    }
}
