import FuzzSupport

@testable import DistillTemplate

/// The chat template reader and renderer (Sources/DistillTemplate): a template is code from a
/// model file, so any text must give a rendering or a `TemplateError`, never a trap, a stack
/// overflow or a hang. The first byte's low bit says whether the chat has a system turn; the
/// rest is the template, rendered with the variables a chat gives and with lowered limits (2,000 iterations, 64 KiB, 2,000 items, 4 MiB of work), so
/// that a run spends its time on the language, not on filling memory up to the daemon's limits.
@_cdecl("FuzzTemplate_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in fuzz(data!, size) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzInput(data, size, refusing: TemplateError.self) { control, rest in
        let source = String(decoding: rest, as: UTF8.self)
        let messages: [(role: String, content: String)] =
            (control & 1 == 1 ? [("system", "Be brief.")] : []) + [("user", "  Hi 'there' \"é\" ✓\n")]
        let variables = ChatTemplate.chatVariables(
            messages: messages, addGenerationPrompt: control & 2 == 0, specialTokens: ["bos_token": "<s>", "eos_token": "</s>"])
        let template = try ChatTemplate(source)
        _ = try template.render(variables, iterationLimit: 2000, outputLimit: 1 << 16, itemLimit: 2000, workLimit: 1 << 22)
    }
}
