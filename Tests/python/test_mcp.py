"""distilld as an MCP tool server (#14), driven by the official `mcp` Python SDK (pinned in the
Makefile) in both its default mode (it probes `server/discover`: the stateless 2026-07-28 revision)
and `mode="legacy"` (the `initialize` handshake), on the built-in demo data: every tool called,
every `structuredContent` validated against the tool's `outputSchema` and against
Protocol/schemas, errors as `isError` results, cancellation, progress and resources; then the same
through `distilld connect --mcp` with state another client loaded.

The tests marked "hand-written client" speak the wire directly (newline-delimited JSON-RPC, as
MCP's stdio transport does) for what the SDK does not expose: the 2025-06-18 handshake, version
refusals, and that a cancelled call is never answered.
"""

import json
import os
import subprocess
import sys
import tempfile

import anyio
import jsonschema
import numpy as np
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from scipy.stats import entropy

from conftest import ROOT, Raw, wait_for
from schema import validate_result

MODES = ["auto", "legacy"]
NGRAM = os.path.join(ROOT, "Tests", "python", "fixtures", "ngram", "kn3.arpa")
STATELESS = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": STATELESS, "io.modelcontextprotocol/clientCapabilities": {}}


def server(distilld, *args):
    return StdioServerParameters(command=distilld, args=list(args))


class Transport:
    """How the SDK reaches distilld: `distilld` on stdio, or `distilld connect --mcp` to a daemon
    on a socket (started here with the same flags), which other clients may share."""

    def __init__(self, kind, distilld, tmp_path):
        self.kind, self.distilld, self.tmp_path = kind, distilld, tmp_path
        self.daemons = []

    def server(self, *daemon_args):
        if self.kind == "stdio":
            return server(self.distilld, *daemon_args)
        path = str(self.tmp_path / f"d{len(self.daemons)}.sock")
        proc = subprocess.Popen([self.distilld, "--listen", path, *daemon_args], stderr=subprocess.DEVNULL)
        self.daemons.append(proc)
        assert wait_for(lambda: os.path.exists(path))
        self.socket = path
        return server(self.distilld, "connect", "--mcp", "--no-start", "--socket", path)

    def close(self):
        for proc in self.daemons:
            proc.kill()
            proc.wait(10)


@pytest.fixture(params=["stdio", "connect"])
def transport(request, distilld, tmp_path):
    t = Transport(request.param, distilld, tmp_path)
    yield t
    t.close()


def run(main, *args):
    """Runs one async test body with a generous overall limit, so a hang fails instead of stalling."""
    async def bounded():
        with anyio.fail_after(120):
            return await main(*args)
    return anyio.run(bounded)


def method_of(tool):
    """teacher_load → teacher/load: the method a tool calls (the first `_` is the method's `/`)."""
    return tool.replace("_", "/", 1)


def walk(node):
    yield node
    if isinstance(node, dict):
        for v in node.values():
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)


# Arguments for every tool, in the order they are called: loads first, unloads last. A tool that
# tools/list offers and this table lacks fails the test, so a new method gets a call here.
EXPORT = os.path.join(tempfile.mkdtemp(prefix="distilld-mcp-"), "targets.safetensors")

DEMO_CALLS = [
    ("distilld_status", {}),
    ("teacher_load", {"name": "demo", "path": "builtin:demo"}),
    ("dataset_load", {"name": "pairs", "path": "builtin:demo"}),
    ("model_load", {"name": "ngram", "path": NGRAM}),
    ("teacher_list", {}),
    ("teacher_info", {"name": "demo"}),
    ("dataset_list", {}),
    ("dataset_info", {"name": "pairs"}),
    ("dataset_examples", {"name": "pairs", "limit": 2}),
    ("model_list", {}),
    ("model_info", {"name": "ngram"}),
    ("model_tokenize", {"model": "ngram", "text": "the cat sat"}),
    ("model_detokenize", {"model": "ngram", "tokens": [1, 23, 19, 0]}),
    ("model_logprobs", {"model": "ngram", "text": "the cat sat"}),
    ("model_generate", {"model": "ngram", "prompt": "the", "maxTokens": 3, "seed": 7}),
    ("teacher_generate", {"model": "ngram", "dataset": "pairs", "n": 2, "maxTokens": 3, "limit": 2}),
    ("teacher_export", {"model": "ngram", "dataset": "pairs", "path": EXPORT, "k": 3, "overwrite": True}),
    ("distill_score", {"teacher": "demo", "students": {"A": {"path": "builtin:demo-student-A"},
                                                      "B": {"path": "builtin:demo-student-B"}},
                       "loss": {"name": "forward_kl"}}),
    ("distill_explain", {"teacher": "demo", "students": {"A": {"path": "builtin:demo-student-A"},
                                                        "B": {"path": "builtin:demo-student-B"}},
                         "example": "ex1"}),
    ("distill_diagnose", {"dataset": "pairs", "inputs": {"path": "builtin:demo-inputs"}}),
    ("distill_audit", {"teacher": "demo", "student": {"path": "builtin:demo-student-A"}, "ks": [1, 2]}),
    ("distill_sequence", {"teacher": [0.8, 0.15, 0.05], "students": {"S1": [0.6, 0.3, 0.1], "S2": [0.6, 0.1, 0.3]},
                          "labels": ["A", "B", "C"]}),
    ("model_unload", {"name": "ngram"}),
    ("dataset_unload", {"name": "pairs"}),
    ("teacher_unload", {"name": "demo"}),
]


def check_tool_result(tool, result):
    """A successful call: structuredContent valid against the tool's outputSchema and the method's
    Protocol schema, and the text block the same JSON."""
    assert result.is_error is False, (tool.name, result.content)
    structured = result.structured_content
    jsonschema.Draft202012Validator(tool.output_schema).validate(structured)
    validate_result(method_of(tool.name), structured)
    assert result.content[0].type == "text"
    assert json.loads(result.content[0].text) == structured
    return structured


@pytest.mark.parametrize("mode", MODES)
def test_every_tool_on_the_demo_data(transport, mode):
    async def main():
        async with Client(transport.server(), mode=mode) as client:
            assert client.protocol_version == (STATELESS if mode == "auto" else "2025-11-25")
            assert client.server_info.name == "distilld"
            tools = {t.name: t for t in (await client.list_tools()).tools}
            called = [name for name, _ in DEMO_CALLS]
            assert set(tools) <= set(called), f"tools with no call in DEMO_CALLS: {set(tools) - set(called)}"
            for core in ("distill_score", "distill_explain", "distill_diagnose", "distill_sequence", "teacher_load",
                         "teacher_unload", "dataset_load", "dataset_unload"):
                assert core in tools
            results = {}
            for name, arguments in DEMO_CALLS:
                if name not in tools:
                    continue  # a method whose schemas this build lacks (the tool is not offered)
                tool = tools[name]
                # Standalone: an agent needs neither the other schema files nor a $ref resolver.
                assert not any(isinstance(n, dict) and "$ref" in n for n in walk(tool.input_schema)), name
                assert not any(isinstance(n, dict) and "$ref" in n for n in walk(tool.output_schema)), name
                assert "workDoneToken" not in tool.input_schema.get("properties", {})
                jsonschema.Draft202012Validator(tool.input_schema).validate(arguments)
                results[name] = check_tool_result(tool, await client.call_tool(name, arguments))
            return results

    results = run(main)
    # The numbers come through unchanged: the demo's ex1 is the textbook case, and score's loss is
    # the mean forward KL over the six examples, checked against scipy on the demo's inputs.
    score = results["distill_score"]
    assert score["best"] == "A" and score["ranking"] == ["A", "B"]
    explain = results["distill_explain"]
    assert explain["closer"] == "A" and "A is closer to the teacher than B" in explain["comparison"]
    kl = {s["name"]: s["direction"]["forwardKl"] for s in explain["students"]}
    assert kl["A"] == pytest.approx(entropy([0.7, 0.2, 0.1], [0.6, 0.3, 0.1]), abs=1e-6)
    assert kl["B"] == pytest.approx(entropy([0.7, 0.2, 0.1], [0.8, 0.1, 0.1]), abs=1e-6)
    seq = results["distill_sequence"]
    t = np.array([0.8, 0.15, 0.05])
    assert seq["students"][0]["crossEntropy"] == pytest.approx(-(t * np.log([0.6, 0.3, 0.1])).sum(), rel=1e-12)
    assert results["teacher_unload"] == {"unloaded": "demo"}


def test_inline_score_matches_scipy(distilld):
    async def main():
        async with Client(server(distilld)) as client:
            return (await client.call_tool("distill_score", {
                "teacher": {"probs": [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]]},
                "students": {"S": {"probs": [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]]}}})).structured_content

    r = run(main)
    expected = np.mean([entropy([0.7, 0.2, 0.1], [0.6, 0.3, 0.1]), entropy([0.1, 0.8, 0.1], [0.2, 0.7, 0.1])])
    assert r["students"][0]["loss"] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_domain_errors_are_tool_results_and_malformed_calls_are_errors(transport, client, mode):
    from distilld import RPCError

    arguments = {"teacher": "nobody", "students": {"A": {"path": "builtin:demo-student-A"}}}
    with pytest.raises(RPCError) as plain:
        client.call("distill/score", arguments)
    bad_temperature = {"teacher": {"probs": [[0.7, 0.2, 0.1]]}, "students": {"A": {"probs": [[0.6, 0.3, 0.1]]}},
                       "loss": {"temperature": -1}}
    with pytest.raises(RPCError) as plain_params:
        client.call("distill/score", bad_temperature)

    async def main():
        async with Client(transport.server(), mode=mode) as client_:
            unknown = await client_.call_tool("distill_score", arguments)
            invalid = await client_.call_tool("distill_score", bad_temperature)
            with pytest.raises(MCPError) as no_tool:
                await client_.call_tool("distill_nothing", {})
            return unknown, invalid, no_tool.value

    unknown, invalid, no_tool = run(main)
    # The message a JSON-RPC client gets, word for word.
    assert unknown.is_error is True and unknown.structured_content is None
    assert [c.text for c in unknown.content] == [plain.value.message]
    assert "nobody" in plain.value.message
    # Arguments the method refuses are the model's to correct: a tool result naming the field.
    assert invalid.is_error is True and invalid.content[0].text == plain_params.value.message
    assert "params.loss.temperature" in invalid.content[0].text
    # A tool that does not exist is a protocol error.
    assert no_tool.code == -32602 and "distill_nothing" in no_tool.error.message


@pytest.fixture(scope="module")
def big_logits(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("mcp") / "logits.npy")
    np.save(path, np.random.default_rng(0).standard_normal((512, 32000), dtype=np.float32))
    yield path
    os.remove(path)


@pytest.mark.parametrize("mode", MODES)
def test_cancel_a_long_call(transport, big_logits, mode):
    """A score of 32 students takes seconds; the SDK gives up on it after 0.3 s and sends
    notifications/cancelled; the session goes on. (That the daemon stops the work rather than
    finishing it unheard is shown below, with a hand-written client.)"""
    async def main():
        async with Client(transport.server(), mode=mode) as client:
            await client.call_tool("teacher_load", {"name": "big", "path": big_logits})
            students = {f"S{k}": {"path": big_logits} for k in range(32)}
            with anyio.move_on_after(0.3) as scope:
                await client.call_tool("distill_score", {"teacher": "big", "students": students, "loss": {"name": "jsd"}})
            assert scope.cancelled_caught, "the long score answered within 0.3 s"
            unloaded = await client.call_tool("teacher_unload", {"name": "big"})
            listed = await client.call_tool("teacher_list", {})
            return unloaded.structured_content, listed.structured_content

    unloaded, listed = run(main)
    assert unloaded == {"unloaded": "big"} and listed == {"teachers": []}


@pytest.mark.parametrize("era", ["handshake", "stateless"])
def test_a_cancelled_score_is_never_answered(distilld, big_logits, era):
    """Hand-written client. The score reads teacher 'big'; the unload after it must wait for it
    to end. Had the cancel been ignored, the score's result would arrive before the unload's."""
    d = Raw(distilld)
    meta = {} if era == "handshake" else {"_meta": META}
    if era == "handshake":
        d.send_line({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                     "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
        assert d.read_line()["result"]["protocolVersion"] == "2025-11-25"
        d.send_line({"jsonrpc": "2.0", "method": "notifications/initialized"})
    call = lambda i, name, args: d.send_line({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                                               "params": {"name": name, "arguments": args, **meta}})
    call(1, "teacher_load", {"name": "big", "path": big_logits})
    assert d.read_line()["result"]["isError"] is False
    students = {f"S{k}": {"path": big_logits} for k in range(8)}
    call(2, "distill_score", {"teacher": "big", "students": students, "loss": {"name": "jsd"}})
    d.send_line({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2, "reason": "test"}})
    call(3, "teacher_unload", {"name": "big"})
    reply = d.read_line()
    assert reply["id"] == 3, f"the cancelled score was answered: {str(reply)[:200]}"
    assert reply["result"]["structuredContent"] == {"unloaded": "big"}
    d.proc.stdin.close()
    assert d.proc.stdout.read() == b""
    d.proc.wait(30)


@pytest.mark.parametrize("mode", MODES)
def test_progress_for_a_progress_token(transport, big_logits, mode):
    seen = []

    async def progress(value, total, message):
        seen.append((value, total, message))

    async def main():
        async with Client(transport.server("--progress-after", "0"), mode=mode) as client:
            await client.call_tool("teacher_load", {"name": "big", "path": big_logits})
            return await client.call_tool("distill_score", {"teacher": "big", "students": {"S": {"path": big_logits}},
                                                            "loss": {"name": "jsd"}}, progress_callback=progress)

    result = run(main)
    assert result.is_error is False
    values = [v for v, _, _ in seen]
    assert len(values) >= 3, seen
    assert values == sorted(values) and len(set(values)) == len(values), "MCP progress must increase"
    assert all(total == 100 for _, total, _ in seen) and 0 <= values[0] and values[-1] <= 100


@pytest.mark.parametrize("mode", MODES)
def test_resources_are_the_loaded_entries_and_the_charts(transport, mode):
    async def main():
        async with Client(transport.server(), mode=mode) as client:
            await client.call_tool("teacher_load", {"name": "demo", "path": "builtin:demo"})
            await client.call_tool("dataset_load", {"name": "pairs two", "path": "builtin:demo"})
            info = (await client.call_tool("teacher_info", {"name": "demo"})).structured_content
            explained = await client.call_tool("distill_explain", {
                "teacher": "demo", "students": {"A": {"path": "builtin:demo-student-A"}}, "example": "ex1"})
            links = [c for c in explained.content if c.type == "resource_link"]
            listed = {str(r.uri): r for r in (await client.list_resources()).resources}
            teacher = await client.read_resource("distilld://teacher/demo")
            dataset = await client.read_resource("distilld://dataset/pairs%20two")
            chart = await client.read_resource(str(links[0].uri))
            templates = (await client.list_resource_templates()).resource_templates
            with pytest.raises(MCPError) as missing:
                await client.read_resource("distilld://teacher/nobody")
            return info, explained.structured_content, links, listed, teacher, dataset, chart, templates, missing.value

    info, explained, links, listed, teacher, dataset, chart, templates, missing = run(main)
    assert {"distilld://teacher/demo", "distilld://dataset/pairs%20two"} <= set(listed)
    assert listed["distilld://teacher/demo"].mime_type == "application/json"
    assert json.loads(teacher.contents[0].text) == info
    assert json.loads(dataset.contents[0].text)["name"] == "pairs two"
    # The charts explain drew: linked from the call, listed, and the same SVG the result carries.
    assert [str(link.uri) for link in links] == [u for u in listed if u.startswith("distilld://charts/")]
    assert {link.name for link in links} == {"contributions-A.svg", "temperature.svg"}
    svg = {"contributions-A.svg": explained["charts"]["contributions"]["A"], "temperature.svg": explained["charts"]["temperature"]}
    assert chart.contents[0].mime_type == "image/svg+xml" and chart.contents[0].text == svg[links[0].name]
    assert {t.uri_template for t in templates} == {f"distilld://{k}/{{name}}" for k in ("teacher", "dataset", "model")}
    assert missing.code == (-32602 if mode == "auto" else -32002)


@pytest.mark.parametrize("mode", MODES)
def test_connect_mcp_sees_what_another_client_loaded(distilld, listening, mode):
    from distilld import Client as RPCClient

    path, _ = listening
    notebook = RPCClient.connect(socket_path=path, binary=distilld)
    notebook.call("teacher/load", {"name": "shared", "path": "builtin:demo"})

    async def main():
        async with Client(server(distilld, "connect", "--mcp", "--no-start", "--socket", path), mode=mode) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            uris = [str(r.uri) for r in (await client.list_resources()).resources]
            score = await client.call_tool("distill_score", {"teacher": "shared", "students": {
                "A": {"path": "builtin:demo-student-A"}, "B": {"path": "builtin:demo-student-B"}}})
            await client.call_tool("teacher_load", {"name": "from-agent", "path": "builtin:demo-student-B"})
            return tools, uris, check_tool_result(tools["distill_score"], score)

    tools, uris, score = run(main)
    assert "distilld://teacher/shared" in uris
    assert score["best"] == "A"
    # What the agent loaded, the notebook sees.
    assert {t["name"] for t in notebook.call("teacher/list")["teachers"]} == {"shared", "from-agent"}
    notebook.close()


def test_the_readme_configuration(distilld, tmp_runtime):
    """README's "For agents" block, as an agent runs it: the shared daemon, started on demand,
    seen by a JSON-RPC client too (then stopped)."""
    text = open(os.path.join(ROOT, "README.md")).read()
    block = text.split("## For agents", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    config = json.loads(block)["mcpServers"]["distilld"]
    assert config["command"] == "distilld"
    env = {"XDG_RUNTIME_DIR": tmp_runtime}

    async def main():
        async with Client(StdioServerParameters(command=distilld, args=config["args"], env=env)) as client:
            loaded = await client.call_tool("teacher_load", {"name": "from-readme", "path": "builtin:demo"})
            return loaded.structured_content

    assert run(main)["name"] == "from-readme"
    from distilld import Client as RPCClient

    path = os.path.join(tmp_runtime, "distilld", "distilld.sock")
    shell = RPCClient.connect(socket_path=path, binary=distilld)
    try:
        assert [t["name"] for t in shell.call("teacher/list")["teachers"]] == ["from-readme"]
        shell.call("distilld/stop")
    finally:
        shell.close()
    assert wait_for(lambda: not os.path.exists(path), timeout=15)


# -- hand-written client: what the SDK does not expose ---------------------------------------------


def handshake(d, version, client_info=True):
    params = {"protocolVersion": version, "capabilities": {}}
    if client_info:
        params["clientInfo"] = {"name": "hand-written", "version": "1"}
    d.send_line({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params})
    return d.read_line()


def test_handshake_2025_06_18_and_counter_offers(distilld):
    """Hand-written client. 2025-06-18 is answered as asked; a revision distilld does not speak
    gets its newest handshake revision, as the handshake revisions say."""
    for asked, answered in [("2025-06-18", "2025-06-18"), ("2025-11-25", "2025-11-25"), ("2024-11-05", "2025-11-25"),
                            ("2099-01-01", "2025-11-25"), (STATELESS, "2025-11-25")]:
        d = Raw(distilld)
        r = handshake(d, asked)["result"]
        assert r["protocolVersion"] == answered, asked
        assert r["capabilities"]["tools"] == {"listChanged": False} and r["serverInfo"]["name"] == "distilld"
        assert "resultType" not in r
        d.send_line({"jsonrpc": "2.0", "method": "notifications/initialized"})
        d.send_line({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        tools = d.read_line()["result"]
        assert "ttlMs" not in tools and all(t["inputSchema"]["type"] == "object" for t in tools["tools"])
        d.send_line({"jsonrpc": "2.0", "id": 3, "method": "ping"})
        assert d.read_line() == {"jsonrpc": "2.0", "id": 3, "result": {}}
        assert handshake(d, asked)["error"]["code"] == -32600, "a second initialize"
        d.proc.stdin.close()
        d.proc.wait(10)


def test_stateless_requests_name_their_revision(distilld):
    """Hand-written client. A stateless request for a revision distilld does not speak gets -32022
    with the revisions it does; one naming none, before any handshake, is refused naming _meta."""
    d = Raw(distilld)
    d.send_line({"jsonrpc": "2.0", "id": 1, "method": "server/discover",
                 "params": {"_meta": {**META, "io.modelcontextprotocol/protocolVersion": "2099-01-01"}}})
    e = d.read_line()["error"]
    assert e["code"] == -32022
    assert e["data"] == {"supported": ["2026-07-28", "2025-11-25", "2025-06-18"], "requested": "2099-01-01"}
    d.send_line({"jsonrpc": "2.0", "id": 2, "method": "server/discover", "params": {"_meta": META}})
    r = d.read_line()["result"]
    assert r["supportedVersions"][0] == STATELESS and r["resultType"] == "complete"
    assert r["ttlMs"] == 0 and r["cacheScope"] == "private"
    assert r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "distilld"
    d.send_line({"jsonrpc": "2.0", "id": 3, "method": "tools/list"})
    e = d.read_line()["error"]
    assert e["code"] == -32602 and e["data"]["field"] == "params._meta"
    d.send_line({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                 "params": {"_meta": META, "name": "teacher_list", "arguments": []}})
    e = d.read_line()["error"]
    assert e["code"] == -32602 and e["data"]["field"] == "params.arguments"
    d.proc.stdin.close()
    d.proc.wait(10)


def test_json_rpc_clients_are_unchanged(distilld):
    """An LSP-style initialize (no protocolVersion) still gets distilld's own reply, and distilld's
    methods answer as before in a session that never spoke MCP."""
    d = Raw(distilld)
    d.send_line({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"clientInfo": {"name": "editor"}}})
    r = d.read_line()["result"]
    assert "protocolVersion" not in r and "methods" in r["capabilities"]
    d.send_line({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    assert d.read_line()["error"]["code"] == -32601
    d.proc.stdin.close()
    d.proc.wait(10)


def test_forced_mcp_session(distilld):
    """`distilld --mcp`: initialize is MCP's even without clientInfo, and one without a
    protocolVersion is refused naming it."""
    d = Raw(distilld, ["--mcp"])
    assert handshake(d, "2025-06-18", client_info=False)["result"]["protocolVersion"] == "2025-06-18"
    d.proc.stdin.close()
    d.proc.wait(10)
    d = Raw(distilld, ["--mcp"])
    d.send_line({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}})
    e = d.read_line()["error"]
    assert e["code"] == -32602 and e["data"]["field"] == "params.protocolVersion"
    d.proc.stdin.close()
    d.proc.wait(10)
