import Foundation

/// A language model the registry holds, seen only as far as the registry needs: its memory
/// (for the budget) and where it was read from. What a model is and how it runs is DistillModels'
/// (`LanguageModel`); the registry gets a `ModelLoader` from the layer that knows the formats, so
/// the store stays below the models.
public protocol LoadedModel: AnyObject, Sendable {
    /// Bytes of the process's own memory the model holds (converted or dequantised weights, tables).
    var residentBytes: Int { get }
    /// Bytes of files mapped for its weights (counted in full against the budget).
    var mappedBytes: Int { get }
    /// The format actually read ("gguf", "huggingface", "arpa"), kept with the workspace entry.
    var format: String { get }
    /// The mapped files its weights are read from while it runs (none: all in memory).
    var files: [MappedFile] { get }
}

/// Where a model was read from, as a request named it (paths made absolute by the registry).
public struct ModelSource: Sendable, Equatable {
    public var path: String
    /// "gguf", "huggingface" or "arpa"; nil: detected from the path.
    public var format: String?
    /// A tokenizer.json to use instead of the model's own.
    public var tokenizer: String?

    public init(path: String, format: String? = nil, tokenizer: String? = nil) {
        self.path = path
        self.format = format
        self.tokenizer = tokenizer
    }

    /// The files a load reads, for the budget's up-front estimate: the file itself, or a
    /// directory's weights and tokenizer, and the tokenizer named apart.
    var files: [String] {
        var out: [String] = []
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            for name in names.sorted() where name.hasSuffix(".safetensors") || name == "tokenizer.json" {
                out.append(path + "/" + name)
            }
        } else {
            out.append(path)
        }
        if let tokenizer { out.append(tokenizer) }
        return out
    }
}

/// A model under a name (or anonymous), with its source; nil source for a model built in memory
/// (an n-gram estimated from a dataset), which is never persisted.
public typealias ModelEntry = StoreEntry<ModelSource, any LoadedModel>

/// Reads the model a source names. Given to the registry by the layer that knows model formats.
/// `progress` is told fractions in 0...1; `isCancelled` is polled between tensors.
public typealias ModelLoader =
    @Sendable (_ source: ModelSource, _ progress: ((Double) -> Void)?, _ isCancelled: (() -> Bool)?) throws -> any LoadedModel

extension StoreEntry where Contents == any LoadedModel {
    public var residentBytes: Int { contents.residentBytes }
    public var mappedBytes: Int { contents.mappedBytes }

    /// As `TeacherEntry.checkFiles`: throws `.fileChanged` when a weight file changed since the
    /// load, and inside `FileGuard.run` watches the files for truncation until the run ends, so a
    /// pass that read zeros from a truncated file is never answered.
    public func checkFiles() throws {
        for map in contents.files {
            FileGuard.note(map)
            try map.checkUnchanged()
        }
    }
}
