import DistillJSON
import Testing

@testable import DistillProtocol

/// `params.prompt`: its three forms, the placeholders of a template, and the refusals that come
/// before any model runs.
struct PromptFormatTests {
    func prompt(_ text: String) throws -> PromptFormat {
        try PromptFormat(Field(try JSON.parse(Array(text.utf8)), path: "params.prompt"))
    }

    @Test func absentIsANewlineSeparatorEchoedAsBefore() throws {
        let absent = try PromptFormat(nil)
        #expect(absent.kind == .separator && absent.separator == "\n")
        #expect(JSON.object(absent.echo).serializedString() == "{\"separator\":\"\\n\"}")
    }

    @Test func templatePlaceholdersAndLiteralBraces() throws {
        let p = try prompt("{\"template\": \"[{id}] {{{input}}} / {full} / {simplified}}}\"}")
        #expect(p.kind == .template)
        let text = p.template!.render(input: "IN", full: "F", simplified: "S", id: "7")
        #expect(text == "[7] {IN} / F / S}")
        #expect(
            JSON.object(p.echo).serializedString()
                == "{\"kind\":\"template\",\"template\":\"[{id}] {{{input}}} / {full} / {simplified}}}\"}")
    }

    @Test func badTemplatesAreRefusedNamingThePlaceholder() {
        for (template, words) in [
            ("Q: {question}", "unknown placeholder {question}"), ("{input", "never closed"), ("a } b", "closes no placeholder"),
            ("{}", "unknown placeholder {}"), ("{in{put}", "never closed"),
        ] {
            let error = responseError { _ = try prompt("{\"template\": \"\(template)\"}") }
            #expect(error?.code == .invalidParams)
            #expect(error?.data?["field"]?.stringValue == "params.prompt.template")
            #expect(error?.message.contains(words) == true, "\(template): \(error?.message ?? "")")
        }
    }

    @Test func chatFormsAndTheirEcho() throws {
        let plain = try prompt("{\"chat\": true}")
        #expect(plain.kind == .chat && plain.system == nil)
        #expect(JSON.object(plain.echo).serializedString() == "{\"kind\":\"chat\",\"chat\":true}")
        let system = try prompt("{\"chat\": {\"system\": \"Be brief.\"}}")
        #expect(system.system == "Be brief.")
        #expect(JSON.object(system.echo).serializedString() == "{\"kind\":\"chat\",\"chat\":{\"system\":\"Be brief.\"}}")
    }

    @Test func oneFormAtATime() {
        expectInvalidParams(field: "params.prompt", "gives chat and separator; give one of separator, template and chat") {
            _ = try prompt("{\"separator\": \" \", \"chat\": true}")
        }
        let falseChat = responseError { _ = try prompt("{\"chat\": false}") }
        #expect(falseChat?.data?["field"]?.stringValue == "params.prompt.chat")
        let unknown = responseError { _ = try prompt("{\"chat\": {\"sytem\": \"x\"}}") }
        #expect(unknown?.data?["field"]?.stringValue == "params.prompt.chat.sytem")
    }
}
