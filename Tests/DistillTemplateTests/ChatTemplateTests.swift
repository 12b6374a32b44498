import Testing

@testable import DistillTemplate

/// The renderer against Jinja's documented behaviour under transformers' settings (trim_blocks,
/// lstrip_blocks, no trailing newline kept). Each expected text was worked out by hand from the
/// Jinja documentation and confirmed with jinja2 itself; Tests/python/test_chat_templates.py
/// compares whole chat templates with jinja2 through the daemon.
struct ChatTemplateTests {
    func render(_ source: String, _ variables: [String: TemplateValue] = [:]) throws -> String {
        try ChatTemplate(source).render(variables)
    }

    let chat: [String: TemplateValue] = ChatTemplate.chatVariables(
        messages: [("system", "Be brief."), ("user", "Hi")], addGenerationPrompt: true,
        specialTokens: ["bos_token": "<s>", "eos_token": "</s>"])

    @Test func blockTagsLoseTheirLineAndIndentation() throws {
        // trim_blocks drops the newline after %}, lstrip_blocks the indentation before {%.
        let source = "{% for m in messages %}\n    {% if m.role == 'user' %}\n  U:{{ m.content }}\n    {% endif %}\n{% endfor %}\n"
        #expect(try render(source, chat) == "  U:Hi\n")
    }

    @Test func outputTagsKeepTheirNewlineAndOneFinalNewlineIsDropped() throws {
        #expect(try render("{{ 'a' }}\n{{ 'b' }}\n") == "a\nb")
        #expect(try render("x\n\n") == "x\n")
    }

    @Test func minusStripsAllWhitespaceAndPlusKeepsIt() throws {
        #expect(try render("a  \n  {{- 'b' -}}  \n  c") == "abc")
        #expect(try render("a\n  {%+ if true %}b{% endif +%}\nc") == "a\n  b\nc")
        #expect(try render("a {#- note -#} b") == "ab")
        #expect(try render("a\n  {# note #}\nb") == "a\nb")
    }

    @Test func loopVariables() throws {
        let source =
            "{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ x }}"
            + "{% if loop.first %}F{% endif %}{% if loop.last %}L{{ loop.length }}{% endif %},{% endfor %}"
        #expect(try render(source) == "10aF,21b,32cL3,")
    }

    @Test func setInsideALoopStaysThereButANamespaceDoesNot() throws {
        let source =
            "{% set n = 0 %}{% set ns = namespace(n=0) %}{% for x in [1, 2, 3] %}{% set n = n + x %}"
            + "{% set ns.n = ns.n + x %}{% endfor %}{{ n }} {{ ns.n }}"
        #expect(try render(source) == "0 6")
    }

    @Test func loopFiltersElseBreakAndContinue() throws {
        #expect(try render("{% for x in range(6) if x is odd %}{{ x }}{% endfor %}") == "135")
        #expect(try render("{% for x in [] %}x{% else %}none{% endfor %}") == "none")
        #expect(
            try render(
                "{% for x in range(9) %}{% if x == 1 %}{% continue %}{% endif %}{% if x > 3 %}{% break %}{% endif %}{{ x }}{% endfor %}")
                == "023")
    }

    @Test func expressionsHavePythonMeanings() throws {
        #expect(try render("{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1 + 2 * 3 }}") == "3 -4 2 3.5 1024 7")
        #expect(
            try render("{{ 'a' ~ 1 ~ none ~ true }} {{ 'ab' * 2 }} {{ [1, 'x', none] }} {{ {'k': 'v'} }}")
                == "a1NoneTrue abab [1, 'x', None] {'k': 'v'}")
        #expect(try render("{{ 'yes' if 1 < 2 else 'no' }}{{ 'never' if false }}|{{ undefined_name }}|") == "yes||")
        #expect(try render("{{ not 0 and 'x' in 'xyz' and 'q' not in ['a'] }}") == "True")
    }

    @Test func subscriptsSlicesAttributesAndMethods() throws {
        let source =
            "{{ messages[1:][0]['content'] }} {{ messages[-1].role }} {{ messages[::-1][0].role }} "
            + "{{ '  x  '.strip() }}|{{ 'abc'.startswith('ab') }} {{ 'a b  c'.split() }} {{ 'a,b'.split(',')|length }} {{ 'Hi'.upper() }}"
        #expect(try render(source, chat) == "Hi user user x|True ['a', 'b', 'c'] 2 HI")
    }

    @Test func filtersAndTests() throws {
        let source =
            "{{ '  t  '|trim }}|{{ messages|length }}|{{ 'MiX'|lower }}{{ 'MiX'|upper }}|{{ {'a': [1, none, 'é\"']}|tojson }}|"
            + "{{ missing|default('d') }}|{{ [3, 4]|join('-') }}|{{ missing is defined }}{{ none is none }}{{ 'x' is string }}"
            + "{{ bos_token is not none }}{{ messages[0].nothing is undefined }}"
        #expect(try render(source, chat) == "t|2|mixMIX|{\"a\": [1, null, \"é\\\"\"]}|d|3-4|FalseTrueTrueTrueTrue")
    }

    @Test func attributeFilters() throws {
        let source =
            "{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|join(',') }}|"
            + "{{ messages|rejectattr('role', 'eq', 'user')|list|length }}|{{ messages|map(attribute='role')|map('upper')|list }}|"
            + "{{ messages|selectattr('missing')|list }}"
        #expect(try render(source, chat) == "Hi|1|['SYSTEM', 'USER']|[]")
    }

    @Test func raiseExceptionCarriesTheTemplatesMessage() throws {
        let source = "line\n{% if messages[0].role == 'system' %}{{ raise_exception('No system role') }}{% endif %}"
        #expect(throws: TemplateError(.raised, "No system role", line: 2)) { try render(source, chat) }
    }

    @Test func unsupportedConstructsAreNamedWithTheirLine() throws {
        #expect(throws: TemplateError(.unsupported(construct: "the 'call' statement"), "", line: 2)) {
            try ChatTemplate("x\n{% call f() %}{% endcall %}")
        }
        #expect(throws: TemplateError(.unsupported(construct: "the filter 'groupby'"), "", line: 3)) {
            try ChatTemplate("\n\n{{ messages|groupby('role') }}")
        }
        #expect(throws: TemplateError(.unsupported(construct: "the test 'sameas'"), "", line: 1)) {
            try ChatTemplate("{{ 1 is sameas 1 }}")
        }
        // Defined, as in Jinja, but not something a chat template calls.
        #expect(try render("{{ cycler is defined }}") == "True")
        #expect(throws: TemplateError(.unsupported(construct: "the function 'cycler'"), "", line: 1)) {
            try render("{{ cycler('a', 'b') }}")
        }
    }

    @Test func macrosTakeArgumentsDefaultsAndKeywords() throws {
        // Expected texts from jinja2 3.1.6 under transformers' settings.
        let source = """
            {% macro greet(name, greeting='Hello', punct=greeting[0]) %}{{ greeting }}, {{ name }}{{ punct }}{% set hidden = 1 %}{% endmacro %}
            {{ greet('Ann') }}|{{ greet('Bob', 'Hi') }}|{{ greet(name='Cy', punct='!') }}|{{ hidden is defined }}
            {% set top = 'T' %}{% macro sees() %}{{ top }}{{ bos_token }}{% endmacro %}{{ sees() }}
            {% macro count(n) %}{% if n > 0 %}{{ n }}{{ count(n - 1) }}{% endif %}{% endmacro %}{{ count(3) }}
            {% for m in ['x', 'y'] %}{{ greet(m, punct='.') }}{% endfor %}|{{ greet is defined }}{{ strftime_now is defined }}
            """
        let want = "Hello, AnnH|Hi, BobH|Hello, Cy!|False\nT<s>\n321\nHello, x.Hello, y.|TrueTrue"
        #expect(try render(source, ["bos_token": .string("<s>")]) == want)
        // A macro reads the top level as it is when called, and the loop it was defined in.
        #expect(try render("{% macro late() %}{{ later }}{% endmacro %}{% set later = 'L' %}{{ late() }}") == "L")
        #expect(try render("{% for x in [1, 2] %}{% macro m() %}{{ x }}{% endmacro %}{{ m() }}{% endfor %}") == "12")
        #expect(try render("{% macro m() %}{{ x }}{% endmacro %}{% for x in [1, 2] %}{{ m() }}{% endfor %}") == "")
        #expect(try render("{% macro m() %}{% set ns.v = 5 %}{% endmacro %}{% set ns = namespace(v=1) %}{{ m() }}{{ ns.v }}") == "5")
    }

    @Test func macroMisuseIsAnEvaluationError() throws {
        #expect(throws: TemplateError(.evaluation, "macro 'f' takes not more than 1 argument(s)", line: 1)) {
            try render("{% macro f(a) %}{% endmacro %}{{ f(1, 2) }}")
        }
        #expect(throws: TemplateError(.evaluation, "macro 'f' takes no keyword argument 'b'", line: 1)) {
            try render("{% macro f(a) %}{% endmacro %}{{ f(b=1) }}")
        }
        #expect(throws: TemplateError(.evaluation, "macro 'f' takes no keyword argument 'a'", line: 1)) {
            try render("{% macro f(a) %}{% endmacro %}{{ f(1, a=2) }}")
        }
        #expect(throws: TemplateError(.syntax, "the macro 'f' names the parameter 'a' twice", line: 1)) {
            try render("{% macro f(a, a) %}{% endmacro %}")
        }
        #expect(throws: TemplateError(.evaluation, "macros call each other more than 100 deep", line: 1)) {
            try render("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}")
        }
        // Two calls a level, 60 levels: 2^60 calls, stopped by the same budget as loops.
        #expect(throws: TemplateError(.evaluation, "the template runs more than 5000 loop iterations and macro calls", line: 1)) {
            try ChatTemplate("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}")
                .render([:], iterationLimit: 5000)
        }
        #expect(throws: TemplateError(.evaluation, "'x' is a int, which cannot be called", line: 1)) {
            try render("{% set x = 1 %}{{ x() }}")
        }
    }

    @Test func tojsonTakesPythonsArguments() throws {
        // Expected texts from json.dumps, as transformers' tojson calls it.
        #expect(
            try render("{{ {'b': [1, {'c': []}], 'a': {}, 'é': '✓😀'}|tojson(indent=2) }}")
                == "{\n  \"b\": [\n    1,\n    {\n      \"c\": []\n    }\n  ],\n  \"a\": {},\n  \"é\": \"✓😀\"\n}")
        #expect(
            try render(
                "{{ {'b': 1, 'a': 'é😀'}|tojson(ensure_ascii=true, sort_keys=true) }}|{{ [1, 2]|tojson(separators=(',', ':')) }}"
                    + "|{{ [1, [2]]|tojson(indent='\t') }}|{{ [1]|tojson(indent=0) }}")
                == "{\"a\": \"\\u00e9\\ud83d\\ude00\", \"b\": 1}|[1,2]|[\n\t1,\n\t[\n\t\t2\n\t]\n]|[\n1\n]")
        #expect(throws: TemplateError(.evaluation, "tojson() takes no argument 'cls'", line: 1)) { try render("{{ 1|tojson(cls=1) }}") }
    }

    @Test func strftimeNowFormatsTheLocalTimeAsPythonDoes() throws {
        // Python's own directives: %f is six digits of microseconds, %z and %Z are empty for a
        // time without a zone; the rest is the C library's, as CPython calls it.
        let text = try render("{{ strftime_now('%f|%z|%Z|%%|%Y') }}")
        let parts = text.split(separator: "|", omittingEmptySubsequences: false)
        #expect(parts.count == 5)
        #expect(parts[0].count == 6 && parts[0].allSatisfy(\.isNumber))
        #expect(parts[1].isEmpty && parts[2].isEmpty && parts[3] == "%")
        #expect((Int(parts[4]) ?? 0) >= 2024)
        #expect(try render("{{ strftime_now('') }}") == "")
        #expect(throws: TemplateError.self) { try render("{{ strftime_now() }}") }
    }

    @Test func malformedTemplatesAreSyntaxErrorsNotCrashes() throws {
        for source in [
            "{% if x %}", "{{ 'unclosed }}", "{{ x ", "{% endfor %}", "{{ (1 }}", "{% for in x %}{% endfor %}", "{{ }}", "{# never",
        ] {
            #expect(throws: TemplateError.self, "\(source)") { try render(source) }
        }
        // Nesting deep enough to overflow a naive recursive parser is refused by name.
        let deep = String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000)
        #expect(throws: TemplateError.self) { try render("{{ \(deep) }}") }
        let blocks = String(repeating: "{% if true %}", count: 5000) + String(repeating: "{% endif %}", count: 5000)
        #expect(throws: TemplateError.self) { try render(blocks) }
    }

    @Test func runawayLoopsStopWithAnError() throws {
        // The budget is lowered here so the test runs in no time; the daemon's is a million.
        let source = "{% for i in range(1000000) %}{% for j in range(1000000) %}{% endfor %}{% endfor %}"
        #expect(throws: TemplateError(.evaluation, "the template runs more than 5000 loop iterations", line: 1)) {
            try ChatTemplate(source).render([:], iterationLimit: 5000)
        }
    }

    @Test func valuesNestedPastTheLimitAreRefusedNotAStackOverflow() throws {
        func wrapped(_ n: Int, _ wrap: String) -> String {
            "{% set ns = namespace(x=1) %}{% for i in range(\(n)) %}{% set ns.x = \(wrap) %}{% endfor %}{{ ns.x|tojson }}"
        }
        #expect(try render(wrapped(127, "[ns.x]")) == String(repeating: "[", count: 127) + "1" + String(repeating: "]", count: 127))
        let refused = TemplateError(.evaluation, "the template nests lists and dictionaries more than 128 deep", line: 1)
        // A million wrappings would overflow the stack when the value is printed or freed.
        for wrap in ["[ns.x]", "{'k': ns.x}", "dict(k=ns.x)", "[1, [ns.x]]"] {
            #expect(throws: refused, "\(wrap)") { try render(wrapped(1_000_000, wrap)) }
        }
        // Wrapping a large value again and again counts against the budget.
        #expect(throws: TemplateError(.evaluation, "the values the template builds pass its budget of 5000 steps", line: 1)) {
            try ChatTemplate("{% set big = range(1000) %}{% for i in range(100) %}{% set x = [big] %}{% endfor %}")
                .render([:], iterationLimit: 5000)
        }
    }

    @Test func stringsAreCodePointsAsInPython() throws {
        // "e" + U+0301 COMBINING ACUTE ACCENT + "x": one grapheme fewer than code points.
        let source =
            "{% set s = 'e\u{301}x' %}{{ s[0] }}|{{ s|length }}|{{ s[::-1] }}|{{ s|reverse }}|{% for c in s %}<{{ c }}>{% endfor %}"
            + "|{{ s[1:] }}|{{ 'ab'.replace('', '-') }}|{{ 'aXbX'|replace('X', '') }}"
        #expect(try render(source) == "e|3|x\u{301}e|x\u{301}e|<e><\u{301}><x>|\u{301}x|-a-b-|ab")
        // Swift's `contains` and `==` go by grapheme and canonical equivalence; Python's do not.
        #expect(
            try render(
                "{{ 'e' in 'e\u{301}x' }} {{ '\u{e9}' == 'e\u{301}' }} {{ 'x\u{301}' in ['x\u{301}'] }} {{ '\u{e9}' in 'e\u{301}' }}")
                == "True False True False")
    }

    @Test func stringsAndListsPastTheLimitsAreRefusedBeforeTheyAreBuilt() throws {
        // The daemon's limits are 64 MiB and 4194304 items; 1 MiB and 1000 here, so the test is quick.
        func limited(_ source: String) throws -> String {
            try ChatTemplate(source).render([:], iterationLimit: 1_000_000, outputLimit: 1 << 20, itemLimit: 1000)
        }
        let string = TemplateError(.evaluation, "the template builds a string of more than 1 MiB", line: 1)
        let list = TemplateError(.evaluation, "the template builds a list of more than 1000 items", line: 1)
        // Doubling forty times would ask for a terabyte.
        let doubling = "{% set ns = namespace(v=X) %}{% for i in range(40) %}{% set ns.v = ns.v OP ns.v %}{% endfor %}"
        for (start, op, error) in [("'ab'", "+", string), ("'ab'", "~", string), ("[1, 2]", "+", list)] {
            #expect(throws: error, "\(start) \(op)") {
                try limited(doubling.replacing("X", with: start).replacing("OP", with: op))
            }
        }
        #expect(throws: string) { try limited("{{ 'x' * 100000000000 }}") }
        #expect(throws: string) { try limited("{{ 'x' * 9223372036854775807 }}") }
        #expect(throws: list) { try limited("{{ [1] * 100000000 }}") }
        #expect(throws: list) { try limited("{% for c in 'x' * 2000 %}{% endfor %}") }
        #expect(throws: string) { try limited("{{ ('x' * 600000).replace('', 'yy') }}") }
        // Small in memory (a thousand references to one string), large as text.
        let wide = "{% set big = 'x' * 10000 %}{% set l = [big] * 1000 %}"
        for use in ["{{ l }}", "{{ l|tojson }}", "{{ l|join(',') }}", "{{ l|string }}", "{{ l ~ '' }}", "{{ l|tojson(indent=100) }}"] {
            #expect(throws: string, "\(use)") { try limited(wide + use) }
        }
        // Each operation is within the limits, but a thousand of them copy 100 MB.
        let busy = "{% set big = 'x' * 100000 %}{% for i in range(1000) %}{% set n = (big ~ i)|length %}{% endfor %}"
        #expect(
            throws: TemplateError(
                .evaluation,
                "the template reads and builds more than 10 MiB of text and items (a budget that keeps one template from holding the daemon)",
                line: 1)
        ) {
            try ChatTemplate(busy).render([:], iterationLimit: 1_000_000, workLimit: 10 << 20)
        }
        #expect(try ChatTemplate(busy).render([:], iterationLimit: 1_000_000, workLimit: 1 << 30) == "")
        // Just under the limits renders.
        #expect(try limited("{{ ('x' * 1048576)|length }} {{ ([1] * 1000)|length }}") == "1048576 1000")
    }

    @Test func integersThatPass64BitsAreErrorsNotTraps() throws {
        // Found by Fuzz/Targets/FuzzTemplate: each of these trapped and ended the daemon.
        let minimum = "(-9223372036854775807 - 1)"
        for (source, expression) in [
            ("-\(minimum)", "-(-9223372036854775808)"), ("\(minimum) // -1", "-9223372036854775808 // -1"),
            ("\(minimum) % -1", "-9223372036854775808 % -1"), ("\(minimum)|abs", "abs(-9223372036854775808)"),
            ("9223372036854775807 + 1", "9223372036854775807 + 1"), ("2 ** 63", "2 ** 63"),
            ("-3 * 4611686018427387904", "-3 * 4611686018427387904"),
        ] {
            let error = TemplateError(
                .evaluation, "\(expression) does not fit in 64 bits (Python's integers are unbounded; a template's here are not)", line: 1)
            #expect(throws: error, "\(source)") { try render("{{ \(source) }}") }
        }
        // What fits is Python's answer (checked with jinja2).
        #expect(
            try render("{{ (-1) ** 65 }} {{ 0 ** 0 }} {{ 2 ** 62 }} {{ -7 // 2 }} {{ 7 % -3 }} {{ \(minimum) // 1 }}")
                == "-1 1 4611686018427387904 -4 -2 -9223372036854775808")
        #expect(
            try render("{{ range(0, 10, 3)|list }} {{ range(10, 0, -3)|list }} {{ range(5, 5)|list }}") == "[0, 3, 6, 9] [10, 7, 4, 1] []")
        #expect(throws: TemplateError.self) { try render("{{ range(-9223372036854775807, 9223372036854775807) }}") }
    }

    @Test func valuesThatCannotBeCombinedAreEvaluationErrors() throws {
        #expect(throws: TemplateError(.evaluation, "cannot apply '+' to a string and a int", line: 2)) {
            try render("\n{{ 'a' + 1 }}")
        }
        #expect(throws: TemplateError(.evaluation, "division by zero", line: 1)) { try render("{{ 1 / 0 }}") }
    }
}
