"""Nothing a client sends may crash the daemon: random bytes, random JSON, and
well-formed requests with random params for every method. After each burst the
daemon must still answer, and every request must have had an answer."""

import json
import random

from hypothesis import HealthCheck, given, settings, strategies as st

# Lone surrogates (\ud800) are not Unicode: jansson rightly refuses such texts with -32700.
TEXT = st.characters(blacklist_categories=("Cs",))
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(TEXT, max_size=20),
                         st.sampled_from(["Infinity", "-Infinity", "NaN", "builtin:demo", "/nonexistent", ""]))
# Object keys with a NUL character are the one piece of valid JSON jansson cannot hold
# (Protocol/README.md): those texts get -32700; elsewhere NUL is fine.
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12), inner, max_size=5)), max_leaves=25)

METHODS = ["initialize", "distilld/ping", "distilld/status", "teacher/load", "teacher/list", "teacher/info",
           "teacher/unload", "dataset/load", "dataset/list", "dataset/info", "dataset/unload", "dataset/examples",
           "distill/score", "distill/diagnose", "distill/explain", "model/load", "model/list", "model/info",
           "model/unload", "model/tokenize", "model/detokenize", "model/logprobs", "model/generate", "distill/sequence",
           "distill/audit", "teacher/export", "teacher/generate", "no/such/method"]
KEYS = ["teacher", "students", "loss", "name", "path", "dataset", "inputs", "examples", "probs", "logits", "logprobs",
        "topk", "labels", "temperatures", "temperature", "example", "data", "mask", "lengths", "dtype", "shape",
        "replace", "kind", "format", "options", "offset", "limit", "conventions", "contextGap", "ids", "reduction",
        "model", "text", "texts", "tokens", "addSpecial", "full", "build", "prompt", "maxTokens", "topK", "topP", "seed",
        "n", "stop", "skipSpecial", "order", "ks", "bound", "k", "context", "overwrite", "behaviour", "candidates",
        "withTarget", "student", "separator", "range", "start", "count", "template", "chat", "system"]

plausible = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
    max_leaves=30)


def ask(d, obj):
    d.send_line(obj)


def drain_until(d, want_id, framed=False):
    while True:
        m = d.read_framed() if framed else d.read_line()
        if isinstance(m, dict) and m.get("id") == want_id:
            return m


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=5))
def test_random_bytes_never_kill_the_daemon(raw_factory, chunks):
    d = raw_factory()
    sent = b"".join(c.replace(b"\n", b" ") + b"\n" for c in chunks)
    d.write(sent)
    # The daemon picks its framing from the first non-blank byte after a byte-order mark.
    first = sent.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")[:1]
    framed = first not in (b"{", b"[")
    ping = {"jsonrpc": "2.0", "id": "alive", "method": "distilld/ping"}
    if framed:
        # A blank line ends whatever header the junk started; reading resumes at our header.
        d.write(b"\r\n\r\n")
        d.send_framed(ping)
    else:
        d.send_line(ping)
    assert drain_until(d, "alive", framed)["result"]["pong"] is True
    d.close()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.sampled_from(METHODS), st.one_of(plausible, json_values)), min_size=1, max_size=6))
def test_random_params_to_every_method_get_answers(raw_factory, calls):
    d = raw_factory()
    for i, (method, params) in enumerate(calls):
        ask(d, {"jsonrpc": "2.0", "id": i, "method": method, "params": params})
    answered = {}
    for _ in calls:
        m = d.read_line()
        while "id" not in m:
            m = d.read_line()
        answered[m["id"]] = m
        assert ("result" in m) != ("error" in m)
        if "error" in m:
            assert m["error"]["code"] != -32603, f"internal error: {m}"
            if m["error"]["code"] == -32602:
                assert m["error"]["data"]["field"].startswith("params")
    assert set(answered) == set(range(len(calls)))
    d.send_line({"jsonrpc": "2.0", "id": "alive", "method": "distilld/ping"})
    assert drain_until(d, "alive")["result"]["pong"] is True
    d.close()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 2**32 - 1))
def test_mutated_valid_requests(raw_factory, seed):
    rnd = random.Random(seed)
    base = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "distill/score",
                       "params": {"teacher": {"probs": [[0.7, 0.2, 0.1]]},
                                  "students": {"A": {"probs": [[0.6, 0.3, 0.1]]}},
                                  "loss": {"name": "forward_kl", "temperature": 1.0}}})
    b = bytearray(base.encode())
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(3)
        # The first byte stays "{": it is what tells the daemon this stream is line-framed.
        pos = rnd.randrange(1, len(b))
        if op == 0:
            b[pos] = rnd.randrange(32, 127)
        elif op == 1:
            del b[pos]
        else:
            b.insert(pos, rnd.randrange(32, 127))
    d = raw_factory()
    d.write(bytes(b).replace(b"\n", b" ") + b"\n")
    d.send_line({"jsonrpc": "2.0", "id": "alive", "method": "distilld/ping"})
    m = drain_until(d, "alive")
    assert m["result"]["pong"] is True
    d.close()


def test_integers_beyond_64_bits_are_a_parse_error(raw):
    # jansson reads JSON integers as 64-bit; a larger one makes the text unreadable
    # (documented in Protocol/README.md), and reading goes on.
    d = raw()
    d.send_line('{"jsonrpc":"2.0","id":1,"method":"distilld/ping","params":{"payload":9223372036854775808}}')
    m = d.read_line()
    assert m["id"] is None and m["error"]["code"] == -32700
    assert "too big" in m["error"]["message"]
    d.send_line({"jsonrpc": "2.0", "id": 2, "method": "distilld/ping", "params": {"payload": 9223372036854775807}})
    assert d.read_line()["result"]["payload"] == 9223372036854775807
