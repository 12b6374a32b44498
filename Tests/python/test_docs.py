"""What Protocol/ says about error data and dataset sizes matches what the daemon sends (issue #10)."""

import json
import os

import pytest

from conftest import ROOT
from schema import _ALL, validate_envelope, validate_ref
from distilld import RPCError

PROTOCOL = os.path.join(ROOT, "Protocol")


def _examples():
    """Every reply example (`← {...}`) in Protocol/*.md that is whole JSON."""
    for name in sorted(os.listdir(PROTOCOL)):
        if name.endswith(".md"):
            for number, line in enumerate(open(os.path.join(PROTOCOL, name)), 1):
                if line.startswith("← "):
                    try:
                        yield f"{name}:{number}", json.loads(line[2:])
                    except ValueError:
                        continue  # abridged with "..."


def test_documented_unknown_name_errors_carry_the_name():
    """Before: the examples showed `data: {"reason": "unknownName"}`, though the daemon also sends `name`."""
    seen = 0
    for where, message in _examples():
        if "error" in message and message["error"]["code"] in (1001, 1002):
            validate_ref(message["error"]["data"], "common.json#/$defs/unknownNameData")
            assert message["error"]["data"]["name"] in message["error"]["message"], where
            seen += 1
    assert seen >= 2


UNKNOWN_NAMES = [
    ("teacher/info", {"name": "k"}, 1001, "k"), ("teacher/unload", {"name": "k"}, 1001, "k"),
    ("teacher/info", {"name": "d"}, 1001, "d"), ("dataset/info", {"name": "zz"}, 1002, "zz"),
    ("dataset/unload", {"name": "t"}, 1002, "t"), ("dataset/examples", {"name": "zz"}, 1002, "zz"),
    ("distill/score", {"teacher": "k", "students": {"A": {"teacher": "t"}}}, 1001, "k"),
    ("distill/score", {"teacher": "t", "students": {"A": {"teacher": "nope"}}}, 1001, "nope"),
    ("distill/score", {"teacher": "t", "students": {"A": {"teacher": "t"}}, "dataset": "zz"}, 1002, "zz"),
    ("distill/explain", {"teacher": "k", "students": {"A": {"teacher": "t"}}}, 1001, "k"),
    ("distill/diagnose", {"dataset": "d", "inputs": "zz"}, 1002, "zz"),
]


def test_unknown_name_errors_are_exactly_as_documented(client):
    client.call("teacher/load", name="t", path="builtin:demo")
    client.call("dataset/load", name="d", path="builtin:demo")
    for method, params, code, name in UNKNOWN_NAMES:
        with pytest.raises(RPCError) as e:
            client.call(method, params)
        assert e.value.code == code, (method, params)
        assert e.value.data == {"reason": "unknownName", "name": name}, (method, params)
        validate_envelope({"jsonrpc": "2.0", "id": 1, "error": {"code": e.value.code, "message": e.value.message,
                                                              "data": e.value.data}})


def _utf8(*texts):
    return sum(len(t.encode("utf-8")) for t in texts if t is not None)


def test_dataset_bytes_is_the_documented_estimate_not_the_file_size(client, tmp_path):
    """Before: `bytes` was undocumented, and read as the file size it is not."""
    assert "description" in _ALL["store.json"]["$defs"]["datasetInfo"]["properties"]["bytes"]
    records = [{"id": "q1", "full": "Context: Paris is in France. Where is Paris?", "simplified": "Where is Paris?",
                "target": "France", "label": 1, "note": "ignored"},
               {"id": "q2", "full": "L'été à Zürich", "simplified": "été"}]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    info = client.call("dataset/load", name="p", path=str(path))
    expected = sum(_utf8(r["id"], r["full"], r["simplified"], r.get("target")) + 64 for r in records)
    assert info["bytes"] == expected and info["bytes"] != os.path.getsize(path)
    assert client.call("dataset/info", name="p")["bytes"] == expected
    listed = {d["name"]: d for d in client.call("dataset/list")["datasets"]}
    assert listed["p"]["residentBytes"] == expected
    # ids made from line numbers count as their text
    noid = tmp_path / "noid.jsonl"
    noid.write_text("\n".join(json.dumps({"full": "a b c", "simplified": "a"}) for _ in range(11)) + "\n")
    assert client.call("dataset/load", name="n", path=str(noid))["bytes"] == sum(_utf8(str(k), "a b c", "a") + 64
                                                                               for k in range(1, 12))
    # input lists: each text plus 32
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("first input\n\nsecond, longer input\n")
    assert client.call("dataset/load", name="i", path=str(inputs), kind="inputs")["bytes"] == \
        _utf8("first input", "second, longer input") + 2 * 32
    # inline: full and simplified plus 64; inputs plus 32
    inline = client.call("dataset/load", name="e", examples=[{"id": "x", "full": "ab", "simplified": "a", "target": "t"}])
    assert inline["bytes"] == _utf8("ab", "a") + 64
    assert client.call("dataset/load", name="f", inputs=["xyz", "é"])["bytes"] == _utf8("xyz", "é") + 2 * 32
