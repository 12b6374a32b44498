import Foundation
import PackagePlugin

/// Embeds `Protocol/schemas/*.json` in the DistillSchemas module, so the daemon carries the very
/// schemas the tests validate its replies against (MCP tools publish them) and a schema added or
/// changed there reaches the binary at the next build, with no step to forget.
///
/// The plugin writes the Swift file itself, and only when its text changes (so an unchanged schema
/// directory recompiles nothing); the prebuild command that declares the directory as generated
/// sources is a no-op. A prebuild command rather than a build command: it needs no tool built from
/// this package, so builds that pass compiler flags to every target (the fuzzers') are unaffected.
@main
struct EmbedSchemas: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let schemas = context.package.directoryURL.appending(path: "Protocol/schemas")
        let names = try FileManager.default.contentsOfDirectory(atPath: schemas.path)
            .filter { $0.hasSuffix(".json") }.sorted()
        var source = "// Generated from Protocol/schemas by Plugins/EmbedSchemas at build time: do not edit.\n\n"
        source += "extension ProtocolSchemas {\n    static let embedded: [(name: String, text: String)] = [\n"
        for name in names {
            let text = try String(contentsOf: schemas.appending(path: name), encoding: .utf8)
            source += "        (\(literal(name)), \(literal(text))),\n"
        }
        source += "    ]\n}\n"
        let directory = context.pluginWorkDirectoryURL.appending(path: "generated")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let output = directory.appending(path: "EmbeddedSchemas.swift")
        if (try? String(contentsOf: output, encoding: .utf8)) != source {
            try source.write(to: output, atomically: true, encoding: .utf8)
        }
        return [
            .prebuildCommand(
                displayName: "Embedding \(names.count) schemas from Protocol/schemas",
                executable: URL(fileURLWithPath: "/usr/bin/true"), arguments: [], outputFilesDirectory: directory)
        ]
    }

    /// A raw string literal holding `text` exactly: more `#`s than any run of them in the text,
    /// so nothing inside can end the literal or start an escape.
    func literal(_ text: String) -> String {
        var longest = 0
        var run = 0
        for character in text {
            run = character == "#" ? run + 1 : 0
            longest = max(longest, run)
        }
        let hashes = String(repeating: "#", count: longest + 1)
        return "\(hashes)\"\"\"\n\(text)\n\"\"\"\(hashes)"
    }
}
