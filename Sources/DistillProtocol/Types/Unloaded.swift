import DistillJSON

/// What `teacher/unload` and `dataset/unload` answer: `{"unloaded": NAME}`.
public struct Unloaded: ResponseType {
    public var name: String

    public init(name: String) { self.name = name }

    public var json: JSON { ["unloaded": JSON(name)] }
}
