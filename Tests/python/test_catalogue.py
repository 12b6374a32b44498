"""The bad-input catalogue (issue #10): one table of requests a client may get wrong — on the
wire, in the numbers, in the files, on the socket — each with the exact error code, the field
or file the reply must name, and a check that the registry and the workspace are unchanged
afterwards and that the daemon still answers.

One daemon serves the whole module: `--listen` on a temporary socket, `--workspace` on a
temporary file, with a teacher `t0`, a paired dataset `d0` and an input list `i0` loaded from
files first (so the workspace holds entries a bad request could disturb). Every case runs on a
fresh connection. File cases are tried twice: as a new name, and as `replace: true` of the
existing entry, which must survive the failure."""

import json
import os
import socket
import struct
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
from safetensors.numpy import save_file

from catalogue_daemon import CatalogueDaemon

MAX_MESSAGE = 65536
ANY = object()




# ----------------------------------------------------------------------------- files


def _st(path, header, data=b""):
    hb = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + data)


def _npy(path, header: str, data=b"", version=1):
    h = header.encode("latin1")
    pad = 64 - (10 + len(h) + 1) % 64
    h = h + b" " * pad + b"\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<H", len(h)) + h + data)


def make_files(d):
    def q(n):
        return os.path.join(d, n)

    rng = np.random.default_rng(11)
    np.save(q("good.npy"), rng.standard_normal((2, 1, 3)).astype(np.float32))
    save_file({"logits": rng.standard_normal((2, 1, 3)).astype(np.float32)}, q("good.safetensors"))
    with open(q("paired.jsonl"), "w") as f:
        f.write('{"id": "a", "full": "long context a", "simplified": "a"}\n'
                '{"id": "b", "full": "long context b", "simplified": "b"}\n')
    with open(q("inputs.txt"), "w") as f:
        f.write("a\nlong context b\n")

    good = open(q("good.safetensors"), "rb").read()
    open(q("truncated.safetensors"), "wb").write(good[:-5])
    open(q("short_prefix.safetensors"), "wb").write(b"\x10\x00\x00")
    open(q("header_len_lies.safetensors"), "wb").write(struct.pack("<Q", 1 << 40) + b'{"a":1}')
    _st(q("offsets_past_end.safetensors"), {"logits": {"dtype": "F32", "shape": [1, 1, 4], "data_offsets": [0, 4096]}},
        b"\0" * 16)
    _st(q("shape_lies.safetensors"), {"logits": {"dtype": "F32", "shape": [2, 1, 4], "data_offsets": [0, 16]}},
        b"\0" * 16)
    _st(q("header_not_object.safetensors"), [1, 2, 3])
    _st(q("unknown_dtype.safetensors"), {"logits": {"dtype": "F8_E4M3", "shape": [1, 1, 4], "data_offsets": [0, 4]}},
        b"\0" * 4)
    _st(q("negative_shape.safetensors"), {"logits": {"dtype": "F32", "shape": [1, -1, 4], "data_offsets": [0, 16]}},
        b"\0" * 16)
    open(q("empty.safetensors"), "wb").close()
    open(q("empty.npy"), "wb").close()
    open(q("empty_teacher.jsonl"), "wb").close()
    open(q("not_magic.npy"), "wb").write(b"NUMPY\x01\x00" + b"\0" * 60)
    _npy(q("header_garbage.npy"), "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), ")
    _npy(q("int16.npy"), "{'descr': '<i2', 'fortran_order': False, 'shape': (1, 4), }", b"\0" * 8)
    _npy(q("complex.npy"), "{'descr': '<c8', 'fortran_order': False, 'shape': (1, 2), }", b"\0" * 16)
    _npy(q("big_endian.npy"), "{'descr': '>f4', 'fortran_order': False, 'shape': (1, 4), }", b"\0" * 16)
    _npy(q("fortran.npy"), "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", b"\0" * 24)
    _npy(q("npy_short_data.npy"), "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 8), }", b"\0" * 16)
    _npy(q("npy_version9.npy"), "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }", b"\0" * 8, version=9)
    with open(q("teacher_badline.jsonl"), "w") as f:
        f.write('{"id": "x", "logits": [[0.1, 0.2]]}\n{"id": "y", "logits": [[0.1, oops]]}\n')
    with open(q("teacher_ragged.jsonl"), "w") as f:
        f.write('{"id": "x", "logits": [[0.1, 0.2]]}\n{"id": "y", "logits": [[0.1, 0.2, 0.3]]}\n')
    with open(q("teacher_strings.jsonl"), "w") as f:
        f.write('{"id": "x", "logits": [["a", "b"]]}\n')
    open(q("teacher_bad_utf8.jsonl"), "wb").write(b'{"id": "x\xff\xfe", "logits": [[0.1, 0.2]]}\n')
    with open(q("paired_badline.jsonl"), "w") as f:
        f.write('{"id": "a", "full": "x", "simplified": "y"}\n\n{"id": "b", "full": "x", "simplified": }\n')
    with open(q("paired_array_line.jsonl"), "w") as f:
        f.write('{"id": "a", "full": "x", "simplified": "y"}\n["b", "x", "y"]\n')
    with open(q("paired_wrong_type.jsonl"), "w") as f:
        f.write('{"id": "a", "full": "x", "simplified": "y"}\n{"id": "b", "full": 7, "simplified": "y"}\n')
    open(q("paired_bad_utf8.jsonl"), "wb").write(b'{"id": "a", "full": "x", "simplified": "y"}\n'
                                                 b'{"id": "b", "full": "caf\xe9", "simplified": "y"}\n')
    open(q("empty_paired.jsonl"), "wb").close()
    open(q("empty.csv"), "wb").close()
    with open(q("header_only.csv"), "w") as f:
        f.write("id,full,simplified\n")
    with open(q("unclosed.csv"), "w") as f:
        f.write('id,full,simplified\na,b,c\nd,"e,f\n')
    with open(q("after_quote.csv"), "w") as f:
        f.write('id,full,simplified\na,"b"c,d\n')
    with open(q("missing_column.csv"), "w") as f:
        f.write("id,full\na,b\n")
    with open(q("dup_id.csv"), "w") as f:
        f.write("id,full,simplified\na,b,c\na,d,e\n")
    open(q("bad_utf8.csv"), "wb").write(b"id,full,simplified\na,b\xc3\x28,c\n")
    open(q("empty_inputs.txt"), "wb").close()
    with open(q("inputs_not_list.json"), "w") as f:
        f.write('{"inputs": ["a"]}')
    with open(q("inputs_numbers.json"), "w") as f:
        f.write('["a", 3]')
    os.mkdir(q("a_directory.npy"))
    os.mkfifo(q("fifo.npy"))
    return q


# ----------------------------------------------------------------------------- the daemon


@pytest.fixture(scope="module")
def daemon(distilld, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("catalogue"))
    q = make_files(d)
    dm = CatalogueDaemon(distilld, d, "--max-message-bytes", str(MAX_MESSAGE))
    dm.files = q
    for method, params in [("teacher/load", {"name": "t0", "path": q("good.npy")}),
                           ("dataset/load", {"name": "d0", "path": q("paired.jsonl")}),
                           ("dataset/load", {"name": "i0", "path": q("inputs.txt"), "kind": "inputs"})]:
        r = dm.call(method, params)
        assert "result" in r, r
    saved = json.loads(dm.workspace_bytes())
    assert [t["name"] for t in saved["teachers"]] == ["t0"]
    yield dm
    dm.stop()


# ----------------------------------------------------------------------------- the table


@dataclass
class Case:
    id: str
    kind: str  # wire | numeric | file | socket
    send: object  # a request's (method, params), raw bytes, or a callable(daemon, conn) -> error reply
    code: int
    data: dict = field(default_factory=dict)  # members error.data must have (ANY: present)
    contains: tuple = ()  # substrings of error.message
    reply_id: object = "c"  # the id the error must carry (raw sends)
    replace: tuple = ()  # file cases: also try replace:true of this (method, name)
    xfail: str = ""
    timeout: float = 15.0


DROP = object()  # a default member the case leaves out


def score(teacher=None, students=None, loss=None, **extra):
    p = {"teacher": teacher if teacher is not None else {"probs": [[0.7, 0.2, 0.1]]},
         "students": students if students is not None else {"A": {"probs": [[0.6, 0.3, 0.1]]}}}
    if loss is not None:
        p["loss"] = loss
    p.update(extra)
    return ("distill/score", p)


def explain(**extra):
    p = {"teacher": {"probs": [[0.7, 0.2, 0.1]]}, "students": {"A": {"probs": [[0.6, 0.3, 0.1]]}}}
    p.update(extra)
    return ("distill/explain", {k: v for k, v in p.items() if v is not DROP})


def diagnose(**extra):
    p = {"dataset": "d0"}
    p.update(extra)
    return ("distill/diagnose", {k: v for k, v in p.items() if v is not DROP})


def sequence(**extra):
    p = {"teacher": [0.8, 0.15, 0.05], "students": {"S": [0.6, 0.3, 0.1]}}
    p.update(extra)
    return ("distill/sequence", {k: v for k, v in p.items() if v is not DROP})


def tload(**extra):
    p = {"name": "t1", "path": "@good.npy"}
    p.update(extra)
    return ("teacher/load", {k: v for k, v in p.items() if v is not DROP})


def dload(**extra):
    p = {"name": "d1", "path": "@paired.jsonl"}
    p.update(extra)
    return ("dataset/load", {k: v for k, v in p.items() if v is not DROP})


def invalid_params(cid, request, fld, kind="wire", **kw):
    return Case(cid, kind, request, -32602, {"field": fld, **kw.pop("data", {})}, **kw)


def line(obj):
    return (obj if isinstance(obj, str) else json.dumps(obj)).encode() + b"\n"


PING = line({"jsonrpc": "2.0", "id": 0, "method": "distilld/ping"})


def framed(body: bytes, header=None):
    return (header if header is not None else b"Content-Length: %d\r\n\r\n" % len(body)) + body


WIRE = [
    Case("malformed-json", "wire", line('{"jsonrpc": "2.0", "id": "c", "method": "distilld/ping"'), -32700,
         reply_id=None),
    Case("trailing-garbage-after-json", "wire", line('{"jsonrpc":"2.0","id":"c","method":"distilld/ping"} 7'),
         -32700, reply_id=None),
    Case("jsonrpc-1.0", "wire", line({"jsonrpc": "1.0", "id": "c", "method": "distilld/ping"}), -32600),
    Case("jsonrpc-missing", "wire", line({"id": "c", "method": "distilld/ping"}), -32600),
    Case("jsonrpc-as-number", "wire", line({"jsonrpc": 2.0, "id": "c", "method": "distilld/ping"}), -32600),
    Case("id-object", "wire", line({"jsonrpc": "2.0", "id": {"a": 1}, "method": "distilld/ping"}), -32600,
         reply_id=None),
    Case("id-array", "wire", line({"jsonrpc": "2.0", "id": [1], "method": "distilld/ping"}), -32600, reply_id=None),
    Case("id-bool", "wire", line({"jsonrpc": "2.0", "id": True, "method": "distilld/ping"}), -32600, reply_id=None),
    Case("id-too-big-integer", "wire", line('{"jsonrpc":"2.0","id":123456789012345678901234,"method":"distilld/ping"}'),
         -32700, reply_id=None, contains=("too big",)),
    Case("method-missing", "wire", line({"jsonrpc": "2.0", "id": "c"}), -32600),
    Case("method-number", "wire", line({"jsonrpc": "2.0", "id": "c", "method": 7}), -32600),
    invalid_params("params-array", ("distilld/ping", ["hi"]), "params"),
    Case("params-string", "wire", line({"jsonrpc": "2.0", "id": "c", "method": "distilld/ping", "params": "x"}), -32600),
    Case("unknown-method", "wire", ("no/such", {}), -32601, {"method": "no/such"}),
    Case("rpc-internal-method-name", "wire", ("rpc.discover", {}), -32601, {"method": "rpc.discover"}),
    Case("empty-batch", "wire", line("[]"), -32600, reply_id=None),
    Case("scalar-after-first-line", "wire", PING + line("42"), -32600, reply_id=None),
    Case("string-message", "wire", PING + line('"hello"'), -32600, reply_id=None),
    Case("null-message", "wire", PING + line("null"), -32600, reply_id=None),
    Case("nul-in-object-key", "wire", line('{"jsonrpc":"2.0","id":"c","method":"distilld/ping","params":{"a\\u0000b":1}}'),
         -32700, reply_id=None),
    Case("invalid-utf8", "wire", b'{"jsonrpc":"2.0","id":"c","method":"distilld/ping","params":{"payload":"\xff\xfe"}}\n',
         -32700, reply_id=None),
    Case("lone-surrogate", "wire", line('{"jsonrpc":"2.0","id":"c","method":"distilld/ping","params":{"payload":"\\ud800"}}'),
         -32700, reply_id=None),
    Case("framed-no-content-length", "wire", b"Content-Type: application/json\r\n\r\n" + PING, -32700, reply_id=None),
    Case("framed-length-not-a-number", "wire", b"Content-Length: twelve\r\n\r\n{}", -32700, reply_id=None),
    Case("framed-negative-length", "wire", b"Content-Length: -5\r\n\r\n{}", -32700, reply_id=None),
    Case("framed-wrong-charset", "wire",
         framed(PING.strip(), b"Content-Length: %d\r\nContent-Type: application/json; charset=latin1\r\n\r\n"
                % len(PING.strip())), -32700, reply_id=None),
    Case("second-initialize", "wire", line({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}})
         + line({"jsonrpc": "2.0", "id": "c", "method": "initialize", "params": {}}), -32600),
    Case("request-after-shutdown", "wire", line({"jsonrpc": "2.0", "id": 0, "method": "shutdown"})
         + line({"jsonrpc": "2.0", "id": "c", "method": "teacher/unload", "params": {"name": "t0"}}), -32600,
         {"reason": "shutdown"}),
    # teacher/load
    invalid_params("teacher-load-name-number", tload(name=5), "params.name"),
    invalid_params("teacher-load-name-missing", tload(name=DROP), "params.name"),
    invalid_params("teacher-load-name-empty", tload(name=""), "params.name"),
    invalid_params("teacher-load-path-number", tload(path=3), "params.path"),
    invalid_params("teacher-load-path-and-data", tload(data={"probs": [[1.0]]}), "params.data"),
    invalid_params("teacher-load-replace-string", tload(replace="yes"), "params.replace"),
    invalid_params("teacher-load-format-unknown", tload(format="pickle"), "params.format"),
    invalid_params("teacher-load-format-unknown-builtin", tload(path="builtin:demo", format="pickle"), "params.format"),
    invalid_params("teacher-load-format-with-builtin", tload(path="builtin:demo", format="npy"), "params.format"),
    invalid_params("dataset-load-options-with-builtin", dload(path="builtin:demo", options={"fields": {}}),
                   "params.options"),
    invalid_params("teacher-load-options-array", tload(options=[1]), "params.options"),
    invalid_params("teacher-load-data-string", tload(path=DROP, data="0.5,0.5"), "params.data"),
    invalid_params("teacher-load-unknown-member", tload(colour="red"), "params.colour"),
    # dataset/load
    invalid_params("dataset-load-name-array", dload(name=["d"]), "params.name"),
    invalid_params("dataset-load-path-object", dload(path={"p": 1}), "params.path"),
    invalid_params("dataset-load-kind-unknown", dload(kind="pairs"), "params.kind"),
    invalid_params("dataset-load-examples-object", dload(path=DROP, examples={"a": 1}), "params.examples"),
    invalid_params("dataset-load-examples-item-string", dload(path=DROP, examples=["x"]), "params.examples[0]"),
    invalid_params("dataset-load-example-missing-simplified", dload(path=DROP, examples=[{"full": "x"}]),
                   "params.examples[0].simplified"),
    invalid_params("dataset-load-inputs-number", dload(path=DROP, inputs=3), "params.inputs"),
    invalid_params("dataset-load-options-fields-unknown", dload(options={"fields": {"context": "x"}}),
                   "params.options", contains=("context",)),
    # distill/score
    invalid_params("score-teacher-missing", ("distill/score", {"students": {"A": {"probs": [[1.0]]}}}), "params.teacher"),
    invalid_params("score-teacher-number", score(teacher=7), "params.teacher"),
    invalid_params("score-students-missing", ("distill/score", {"teacher": {"probs": [[1.0]]}}), "params.students"),
    invalid_params("score-students-array", score(students=[{"probs": [[1.0]]}]), "params.students"),
    invalid_params("score-students-empty", score(students={}), "params.students"),
    invalid_params("score-student-number", score(students={"A": 3}), "params.students.A"),
    invalid_params("score-loss-array", score(loss=["forward_kl"]), "params.loss"),
    invalid_params("score-loss-name-number", score(loss={"name": 3}), "params.loss.name"),
    invalid_params("score-worst-negative", score(worst=-1), "params.worst"),
    invalid_params("score-per-example-string", score(perExample="yes"), "params.perExample"),
    invalid_params("score-conventions-unknown", score(conventions=["tensorflow"]), "params.conventions[0]"),
    invalid_params("score-ids-wrong-count", score(ids=["a", "b"]), "params.ids"),
    invalid_params("score-dataset-number", score(dataset=1), "params.dataset"),
    Case("score-unknown-teacher", "wire", score(teacher="ghost"), 1001, {"name": "ghost"}),
    Case("score-unknown-dataset", "wire", score(dataset="ghost"), 1002, {"name": "ghost"}),
    # distill/explain
    invalid_params("explain-teacher-missing", explain(teacher=DROP), "params.teacher"),
    invalid_params("explain-students-string", explain(students="A"), "params.students"),
    invalid_params("explain-labels-wrong-length", explain(labels=["a", "b"]), "params.labels"),
    invalid_params("explain-temperatures-string", explain(temperatures="1,2"), "params.temperatures"),
    invalid_params("explain-top-k-zero", explain(topK=0), "params.topK"),
    invalid_params("explain-example-unknown", explain(example="nope"), "params.example"),
    invalid_params("explain-position-without-example", explain(position=0), "params.position"),
    invalid_params("explain-charts-string", explain(charts="yes"), "params.charts"),
    invalid_params("explain-topk-teacher", explain(teacher={"topk": {"indices": [[0]], "values": [[-0.1]], "vocab": 3}}),
                   "params.teacher"),
    # distill/diagnose
    invalid_params("diagnose-dataset-missing", diagnose(dataset=DROP), "params.dataset"),
    invalid_params("diagnose-dataset-number", diagnose(dataset=4), "params.dataset"),
    invalid_params("diagnose-dataset-is-input-list", diagnose(dataset="i0"), "params.dataset"),
    invalid_params("diagnose-near-threshold-zero", diagnose(nearThreshold=0), "params.nearThreshold"),
    invalid_params("diagnose-max-examples-zero", diagnose(maxExamples=0), "params.maxExamples"),
    invalid_params("diagnose-inputs-number", diagnose(inputs=5), "params.inputs"),
    invalid_params("diagnose-inputs-paired-dataset", diagnose(inputs="d0"), "params.inputs"),
    invalid_params("diagnose-unknown-member", diagnose(bogus=1), "params.bogus"),
    invalid_params("diagnose-context-gap-no-simplified", diagnose(contextGap={"teacherFull": "t0"}),
                   "params.contextGap.teacherSimplified"),
    Case("diagnose-unknown-dataset", "wire", diagnose(dataset="ghost"), 1002),
    # distill/sequence
    invalid_params("sequence-teacher-missing", sequence(teacher=DROP), "params.teacher"),
    invalid_params("sequence-teacher-string", sequence(teacher="0.8,0.2"), "params.teacher"),
    invalid_params("sequence-students-array", sequence(students=[[0.5, 0.5]]), "params.students"),
    invalid_params("sequence-renormalize-string", sequence(renormalize="yes"), "params.renormalize"),
    invalid_params("sequence-labels-wrong-length", sequence(labels=["a"]), "params.labels"),
    Case("sequence-candidate-count-differs", "wire", sequence(students={"S": [0.5, 0.5]}), 1003),
    # other methods
    invalid_params("examples-limit-too-large", ("dataset/examples", {"name": "d0", "limit": 10001}), "params.limit"),
    invalid_params("examples-offset-negative", ("dataset/examples", {"name": "d0", "offset": -1}), "params.offset"),
    Case("teacher-unload-a-dataset-name", "wire", ("teacher/unload", {"name": "d0"}), 1001),
    Case("dataset-unload-a-teacher-name", "wire", ("dataset/unload", {"name": "t0"}), 1002),
    Case("teacher-load-existing-name", "wire", tload(name="t0"), 1006),
    Case("dataset-load-existing-name", "wire", dload(name="d0"), 1006),
]

# ----------------------------------------------------------------------------- batch corners


def _batch(conn, items):
    conn.send(json.dumps(items).encode() + b"\n")
    m = conn.read_line()
    assert isinstance(m, list), f"a batch got {m!r}, not a batch of replies"
    return m


def _batch_of_scalars(dm, conn):
    replies = _batch(conn, [1, 2])
    assert [r["error"]["code"] for r in replies] == [-32600, -32600] and all(r["id"] is None for r in replies)
    return replies[1]


def _batch_mixed(dm, conn):
    replies = _batch(conn, [{"jsonrpc": "2.0", "id": "b1", "method": "distilld/ping"}, {"foo": 1},
                            {"jsonrpc": "2.0", "id": "b3", "method": "no/such"},
                            {"jsonrpc": "2.0", "method": "distilld/ping"},
                            {"jsonrpc": "2.0", "id": "c", "method": "teacher/unload", "params": {"name": "ghost"}}])
    # In request order; the notification gets nothing.
    assert [r.get("id") for r in replies] == ["b1", None, "b3", "c"], replies
    assert replies[0]["result"]["pong"] is True
    assert replies[1]["error"]["code"] == -32600 and replies[2]["error"]["code"] == -32601
    return replies[3]


def _batch_nested(dm, conn):
    replies = _batch(conn, [[]])
    assert len(replies) == 1
    return replies[0]


def _batch_params_array(dm, conn):
    replies = _batch(conn, [{"jsonrpc": "2.0", "id": "c", "method": "teacher/info", "params": ["t0"]}])
    assert len(replies) == 1
    return replies[0]


def _batch_of_notifications(dm, conn):
    conn.send(line([{"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": "nothing"}},
                    {"jsonrpc": "2.0", "method": "distilld/ping"}, {"jsonrpc": "2.0", "method": "no/such"}]))
    conn.send(line({"jsonrpc": "2.0", "id": "c", "method": "teacher/info", "params": {"name": "ghost"}}))
    m = conn.read_line()
    assert isinstance(m, dict), f"a batch of notifications was answered: {m!r}"
    return m


def _batch_with_load_after_bad_member(dm, conn):
    # The bad member is refused; its neighbours still run: an unknown-name unload answers 1001.
    replies = _batch(conn, [{"jsonrpc": "2.0", "id": "x", "method": "teacher/load", "params": {"name": 5}},
                            {"jsonrpc": "2.0", "id": "c", "method": "dataset/unload", "params": {"name": "ghost"}}])
    assert replies[0]["error"]["code"] == -32602 and replies[0]["error"]["data"]["field"] == "params.name"
    return replies[1]


BATCH = [
    Case("batch-of-scalars", "wire", _batch_of_scalars, -32600, reply_id=None),
    Case("batch-mixed-valid-and-invalid", "wire", _batch_mixed, 1001, {"name": "ghost"}),
    Case("batch-nested-empty", "wire", _batch_nested, -32600, reply_id=None),
    Case("batch-member-params-array", "wire", _batch_params_array, -32602, {"field": "params"}),
    Case("batch-of-notifications", "wire", _batch_of_notifications, 1001),
    Case("batch-bad-load-beside-unload", "wire", _batch_with_load_after_bad_member, 1002, {"name": "ghost"}),
]


NUMERIC = [
    invalid_params("nan-in-student-probs", score(students={"A": {"probs": [[0.6, 0.4, "NaN"]]}}),
                   "params.students.A.probs[0][2]", kind="numeric",
                   data={"side": "student", "example": 0, "position": 0, "vocabIndex": 2}),
    invalid_params("infinity-in-student-probs", score(students={"A": {"probs": [[0.6, "Infinity", 0.1]]}}),
                   "params.students.A.probs[0][1]", kind="numeric"),
    invalid_params("nan-in-teacher-logits", score(teacher={"logits": [[1.0, "NaN", 0.0]]}),
                   "params.teacher.logits[0][1]", kind="numeric", data={"side": "teacher"}),
    invalid_params("plus-infinity-in-teacher-logits", score(teacher={"logits": [[1.0, 0.0, "Infinity"]]}),
                   "params.teacher.logits[0][2]", kind="numeric"),
    invalid_params("nan-in-binary-array", score(students={"A": {"probs": {
        "dtype": "float32", "shape": [1, 3],
        "data": __import__("base64").b64encode(np.array([0.5, np.nan, 0.5], np.float32).tobytes()).decode()}}}),
        "params.students.A.probs[0][1]", kind="numeric"),
    invalid_params("probs-not-summing-to-one", score(students={"A": {"probs": [[0.6, 0.6, 0.1]]}}),
                   "params.students.A.probs[0]", kind="numeric"),
    invalid_params("teacher-probs-not-summing-to-one", score(teacher={"probs": [[0.1, 0.1, 0.1]]}),
                   "params.teacher.probs[0]", kind="numeric"),
    invalid_params("negative-probability", score(students={"A": {"probs": [[1.1, -0.1, 0.0]]}}),
                   "params.students.A.probs[0][1]", kind="numeric"),
    invalid_params("positive-log-probability", score(teacher={"logprobs": [[-0.1, 0.5, -3.0]]}),
                   "params.teacher.logprobs[0][1]", kind="numeric"),
    Case("vocab-size-mismatch", "numeric", score(students={"A": {"probs": [[0.5, 0.5]]}}), 1003,
         {"field": "params.students.A", "teacherShape": [1, 1, 3], "studentShape": [1, 1, 2]}),
    Case("example-count-mismatch", "numeric", score(students={"A": {"probs": [[0.6, 0.3, 0.1], [0.6, 0.3, 0.1]]}}), 1003,
         {"teacherShape": [1, 1, 3], "studentShape": [2, 1, 3]}),
    Case("loaded-teacher-shape-mismatch", "numeric", score(teacher="t0", students={"A": {"logits": [[0.1, 0.2]]}}), 1003),
    invalid_params("ragged-rows", score(students={"A": {"probs": [[0.6, 0.3, 0.1], [0.5, 0.5]]}}),
                   "params.students.A.probs[1]", kind="numeric"),
    invalid_params("string-in-number-array", score(students={"A": {"probs": [[0.6, "x", 0.1]]}}),
                   "params.students.A.probs[0][1]", kind="numeric"),
    invalid_params("binary-wrong-byte-count", score(students={"A": {"probs": {"dtype": "float32", "shape": [1, 3],
                                                                              "data": "AAAAAA=="}}}),
                   "params.students.A.probs.data", kind="numeric", data={"expectedBytes": 12, "actualBytes": 4}),
    invalid_params("binary-unknown-dtype", score(students={"A": {"probs": {"dtype": "complex64", "shape": [1, 3],
                                                                           "data": "AAAA"}}}),
                   "params.students.A.probs.dtype", kind="numeric"),
    invalid_params("binary-not-base64", score(students={"A": {"probs": {"dtype": "float32", "shape": [1, 1],
                                                                        "data": "!!!!"}}}),
                   "params.students.A.probs.data", kind="numeric"),
    invalid_params("mask-wrong-shape", score(students={"A": {"probs": [[0.6, 0.3, 0.1]], "mask": [[1, 1]]}}),
                   "params.students.A.mask", kind="numeric"),
    invalid_params("topk-index-out-of-range", score(teacher={"topk": {"indices": [[[0, 7]]], "values": [[[-0.5, -1.0]]],
                                                                     "vocab": 3}}),
                   "params.teacher.topk.indices[0][0][1]", kind="numeric"),
    invalid_params("temperature-zero", score(loss={"temperature": 0}), "params.loss.temperature", kind="numeric"),
    invalid_params("temperature-negative", score(loss={"temperature": -2}), "params.loss.temperature", kind="numeric"),
    invalid_params("temperature-nan", score(loss={"temperature": "NaN"}), "params.loss.temperature", kind="numeric"),
    invalid_params("temperature-infinity", score(loss={"temperature": "Infinity"}), "params.loss.temperature",
                   kind="numeric"),
    invalid_params("teacher-temperature-zero", score(loss={"teacherTemperature": 0}), "params.loss.teacherTemperature",
                   kind="numeric"),
    invalid_params("temperature-1e-300", score(loss={"temperature": 1e-300}), "params.loss.temperature",
                   kind="numeric", contains=("[1e-4, 1e4]",), timeout=10),
    invalid_params("temperature-1e300", score(loss={"temperature": 1e300}), "params.loss.temperature",
                   kind="numeric", contains=("[1e-4, 1e4]",), timeout=10),
    invalid_params("temperature-denormal", score(loss={"temperature": 5e-324}), "params.loss.temperature",
                   kind="numeric", contains=("[1e-4, 1e4]",), timeout=10),
    invalid_params("student-temperature-1e-40", score(loss={"studentTemperature": 1e-40}),
                   "params.loss.studentTemperature", kind="numeric", contains=("[1e-4, 1e4]",), timeout=10),
    invalid_params("explain-temperatures-zero", explain(temperatures=[0.5, 0]), "params.temperatures[1]",
                   kind="numeric"),
    invalid_params("explain-temperature-negative", explain(temperature=-1), "params.temperature", kind="numeric"),
    invalid_params("explain-temperatures-1e-300", explain(temperatures=[1, 1e-300]), "params.temperatures[1]",
                   kind="numeric", contains=("[1e-4, 1e4]",), timeout=10),
    invalid_params("explain-temperature-1e300", explain(temperature=1e300), "params.temperature",
                   kind="numeric", contains=("[1e-4, 1e4]",), timeout=10),
    invalid_params("unknown-loss-name", score(loss={"name": "kl_forward"}), "params.loss.name", kind="numeric",
                   data={"allowed": ANY}),
    invalid_params("unknown-reduction", score(loss={"reduction": "avg"}), "params.loss.reduction", kind="numeric"),
    invalid_params("unknown-tail-policy", score(loss={"tailPolicy": "drop"}), "params.loss.tailPolicy", kind="numeric"),
    invalid_params("alpha-above-one", score(loss={"name": "skew_kl", "alpha": 2}), "params.loss.alpha", kind="numeric"),
    invalid_params("beta-negative", score(loss={"name": "generalized_jsd", "beta": -0.5}), "params.loss.beta",
                   kind="numeric"),
    invalid_params("nll-without-labels", score(loss={"name": "nll"}), "params.loss.labels", kind="numeric"),
    invalid_params("labels-wrong-count", score(loss={"name": "nll", "labels": [0, 1]}), "params.loss.labels",
                   kind="numeric"),
    invalid_params("sequence-probability-above-one", sequence(students={"S": [0.6, 1.3, 0.1]}),
                   "params.students.S[1]", kind="numeric"),
    invalid_params("sequence-set-sums-above-one", sequence(teacher=[0.8, 0.5, 0.05]), "params.teacher",
                   kind="numeric"),
    invalid_params("sequence-positive-log-probability", sequence(students={"S": {"logprobs": [-0.5, 0.2, -2.0]}}),
                   "params.students.S.logprobs[1]", kind="numeric"),
    invalid_params("sequence-nan", sequence(students={"S": {"probs": [0.6, "NaN", 0.1]}}), "params.students.S.probs[1]",
                   kind="numeric"),
]


def file_case(cid, method, file, reason=None, name_field="path", extra=None, line=None, **kw):
    """A load that must fail with 1004 naming the file (and its line or tensor), as a new name
    and as `replace: true` of the existing entry."""
    data = {"file": ("FILE", file)}
    if reason:
        data["reason"] = reason
    if line is not None:
        data["line"] = line
    data.update(kw.pop("data", {}))
    existing = {"teacher/load": "t0", "dataset/load": "d0"}.get(method)
    return Case(cid, "file", ("FILE-LOAD", method, file, extra or {}), kw.pop("code", 1004), data,
                replace=(existing,) if existing else (), **kw)


FILES = [
    file_case("teacher-missing-file", "teacher/load", "does-not-exist.safetensors", "notFound"),
    file_case("teacher-directory", "teacher/load", "a_directory.npy", "unreadable"),
    file_case("teacher-truncated-safetensors", "teacher/load", "truncated.safetensors", data={"tensor": "logits"}),
    file_case("teacher-safetensors-shorter-than-prefix", "teacher/load", "short_prefix.safetensors", "truncated"),
    file_case("teacher-safetensors-header-length-lies", "teacher/load", "header_len_lies.safetensors", "truncated"),
    file_case("teacher-safetensors-offsets-past-end", "teacher/load", "offsets_past_end.safetensors", "badOffsets",
              data={"tensor": "logits"}),
    file_case("teacher-safetensors-shape-disagrees-with-offsets", "teacher/load", "shape_lies.safetensors",
              data={"tensor": "logits"}),
    file_case("teacher-safetensors-header-not-object", "teacher/load", "header_not_object.safetensors",
              "malformedHeader"),
    file_case("teacher-safetensors-unknown-dtype", "teacher/load", "unknown_dtype.safetensors", "unsupportedDtype",
              data={"tensor": "logits"}),
    file_case("teacher-safetensors-negative-dimension", "teacher/load", "negative_shape.safetensors",
              data={"tensor": "logits"}),
    file_case("teacher-empty-safetensors", "teacher/load", "empty.safetensors", extra={"format": "safetensors"}),
    file_case("teacher-empty-npy", "teacher/load", "empty.npy", extra={"format": "npy"}),
    file_case("teacher-empty-jsonl", "teacher/load", "empty_teacher.jsonl"),
    file_case("teacher-npy-bad-magic", "teacher/load", "not_magic.npy", "malformedHeader", extra={"format": "npy"}),
    file_case("teacher-npy-header-garbage", "teacher/load", "header_garbage.npy", "malformedHeader"),
    file_case("teacher-npy-int16", "teacher/load", "int16.npy", "unsupportedDtype"),
    file_case("teacher-npy-complex", "teacher/load", "complex.npy", "unsupportedDtype"),
    file_case("teacher-npy-big-endian", "teacher/load", "big_endian.npy"),
    file_case("teacher-npy-fortran-order", "teacher/load", "fortran.npy"),
    file_case("teacher-npy-data-shorter-than-shape", "teacher/load", "npy_short_data.npy", "truncated"),
    file_case("teacher-npy-unknown-version", "teacher/load", "npy_version9.npy", "malformedHeader"),
    file_case("teacher-jsonl-bad-line", "teacher/load", "teacher_badline.jsonl", "badLine", line=2),
    file_case("teacher-jsonl-ragged-vocab", "teacher/load", "teacher_ragged.jsonl", line=2),
    file_case("teacher-jsonl-strings-for-numbers", "teacher/load", "teacher_strings.jsonl", line=1),
    file_case("teacher-jsonl-invalid-utf8", "teacher/load", "teacher_bad_utf8.jsonl", "badLine", line=1),
    file_case("teacher-vocabulary-missing", "teacher/load", "good.npy", "notFound",
              extra={"options": {"vocabulary": "no-vocab.txt"}}, data={"file": ("FILE", "no-vocab.txt")}),
    file_case("teacher-indices-missing", "teacher/load", "good.npy", "notFound",
              extra={"options": {"indices": "no-indices.npy", "vocabSize": 5}},
              data={"file": ("FILE", "no-indices.npy")}),
    file_case("dataset-missing-file", "dataset/load", "missing.jsonl", "notFound"),
    file_case("dataset-directory", "dataset/load", "a_directory.npy", "unreadable", extra={"format": "jsonl"}),
    file_case("dataset-jsonl-bad-line", "dataset/load", "paired_badline.jsonl", "badLine", line=3),
    file_case("dataset-jsonl-array-line", "dataset/load", "paired_array_line.jsonl", "badLine", line=2),
    file_case("dataset-jsonl-number-for-text", "dataset/load", "paired_wrong_type.jsonl", "badLine", line=2),
    file_case("dataset-jsonl-invalid-utf8", "dataset/load", "paired_bad_utf8.jsonl", "badLine", line=2),
    file_case("dataset-csv-unclosed-quote", "dataset/load", "unclosed.csv", "csvQuoting", line=3),
    file_case("dataset-csv-text-after-quote", "dataset/load", "after_quote.csv", "csvQuoting", line=2),
    file_case("dataset-csv-missing-column", "dataset/load", "missing_column.csv"),
    file_case("dataset-csv-duplicate-id", "dataset/load", "dup_id.csv", "duplicateId", line=3, data={"firstLine": 2}),
    file_case("dataset-csv-invalid-utf8", "dataset/load", "bad_utf8.csv", "invalidUTF8", line=2),
    file_case("dataset-empty-csv", "dataset/load", "empty.csv"),
    file_case("dataset-inputs-json-not-a-list", "dataset/load", "inputs_not_list.json", extra={"kind": "inputs"}),
    file_case("dataset-inputs-json-number-item", "dataset/load", "inputs_numbers.json", extra={"kind": "inputs"}),
    file_case("score-student-path-missing", "distill/score", "no-student.npy", "notFound"),
    file_case("diagnose-inputs-path-missing", "distill/diagnose", "no-inputs.txt", "notFound"),
    # The part before the NUL names a real file: a path cut at the NUL would open the wrong file.
    Case("path-with-nul", "file", tload(path="@good.npy\u0000.txt"), -32602, {"field": "params.path"}),
    Case("dataset-path-with-nul", "file", dload(path="@paired.jsonl\u0000.csv"), -32602, {"field": "params.path"}),
    Case("score-student-path-with-nul", "file", score(teacher="t0", students={"A": {"path": "@good.npy\u0000x"}}),
         -32602, {"field": "params.students.A.path"}),
    file_case("teacher-fifo", "teacher/load", "fifo.npy", "unreadable", timeout=5),
]


def _file_request(dm, send, name, replace):
    _, method, file, extra = send
    path = dm.files(file)
    extra = json.loads(json.dumps(extra))
    for key in ("vocabulary", "indices"):
        if key in extra.get("options", {}):
            extra["options"][key] = dm.files(extra["options"][key])
    if method == "teacher/load":
        params = {"name": name or "t1", "path": path, **extra}
    elif method == "dataset/load":
        params = {"name": name or "d1", "path": path, **extra}
    elif method == "distill/score":
        params = {"teacher": "t0", "students": {"A": {"path": path}}}
    else:
        params = {"dataset": "d0", "inputs": {"path": path}}
    if replace:
        params["replace"] = True
    return method, params


# ----------------------------------------------------------------------------- running a case


def _resolve(dm, value):
    """"@NAME" stands for the module's fixture file NAME."""
    if isinstance(value, str) and value.startswith("@"):
        return dm.files(value[1:])
    if isinstance(value, dict):
        return {k: _resolve(dm, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(dm, v) for v in value]
    return value


def _exchange(dm, conn, case, send):
    if isinstance(send, bytes):
        conn.send(send)
        framed_reply = not send.lstrip()[:1] in (b"{", b"[")
        while True:
            m = conn.read_framed() if framed_reply else conn.read_line()
            if isinstance(m, dict) and m.get("id") == case.reply_id and "error" in m:
                return m
    method, params = send
    params = _resolve(dm, params)
    conn.send_obj({"jsonrpc": "2.0", "id": "c", "method": method, "params": params})
    while True:
        m = conn.read_line()
        if isinstance(m, dict) and m.get("id") == "c":
            return m


def _check(dm, case, reply, path_of):
    assert "error" in reply, f"{case.id}: expected error {case.code}, got {reply}"
    e = reply["error"]
    assert e["code"] == case.code, f"{case.id}: code {e['code']} ({e['message']}), expected {case.code}"
    if isinstance(case.send, bytes) or callable(case.send):
        assert reply["id"] == case.reply_id, f"{case.id}: id {reply['id']!r}, expected {case.reply_id!r}"
    data = e.get("data") or {}
    for k, v in case.data.items():
        if isinstance(v, tuple) and v[0] == "FILE":
            v = path_of(v[1])
            assert v in e["message"], f"{case.id}: message does not name {v}: {e['message']}"
        if v is ANY:
            assert k in data, f"{case.id}: data has no {k}: {data}"
        else:
            assert data.get(k) == v, f"{case.id}: data.{k} is {data.get(k)!r}, expected {v!r} ({e['message']})"
    if "line" in case.data:
        assert f"{path_of(case.send[2])}:{case.data['line']}" in e["message"], e["message"]
    if "tensor" in case.data:
        assert f"'{case.data['tensor']}'" in e["message"], e["message"]
    for s in case.contains:
        assert s in e["message"], f"{case.id}: message lacks {s!r}: {e['message']}"


def run_case(dm, case):
    before = dm.state()
    attempts = [(None, False)] + [(name, True) for name in case.replace]
    for name, replace in attempts:
        conn = dm.connect(timeout=case.timeout)
        try:
            if callable(case.send):
                reply = case.send(dm, conn)
            elif isinstance(case.send, tuple) and case.send[0] == "FILE-LOAD":
                reply = _exchange(dm, conn, case, _file_request(dm, case.send, name, replace))
            else:
                reply = _exchange(dm, conn, case, case.send)
        except (socket.timeout, TimeoutError):
            pytest.fail(f"{case.id}: no reply within {case.timeout} s")
        finally:
            conn.close()
        _check(dm, case, reply, dm.files)
        assert dm.state() == before, f"{case.id}: the registry or the workspace changed"
    assert dm.alive()


def _restore(dm):
    """After a case that failed, puts the module's entries back so later cases start alike."""
    q = dm.files
    for t in dm.call("teacher/list")["result"]["teachers"]:
        if t["name"] != "t0":
            dm.call("teacher/unload", {"name": t["name"]})
    for d in dm.call("dataset/list")["result"]["datasets"]:
        if d["name"] not in ("d0", "i0"):
            dm.call("dataset/unload", {"name": d["name"]})
    for method, params in [("teacher/load", {"name": "t0", "path": q("good.npy"), "replace": True}),
                           ("dataset/load", {"name": "d0", "path": q("paired.jsonl"), "replace": True}),
                           ("dataset/load", {"name": "i0", "path": q("inputs.txt"), "kind": "inputs",
                                             "replace": True})]:
        dm.call(method, params)


def _unblock_fifo(dm):
    # A load stuck opening the FIFO for reading is released by a writer that opens and closes it.
    try:
        fd = os.open(dm.files("fifo.npy"), os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
    except OSError:
        pass


# ----------------------------------------------------------------------------- socket cases


def _oversized_line(dm, conn):
    conn.send(b'{"jsonrpc":"2.0","id":"big","method":"distilld/ping","params":{"payload":"'
              + b"x" * (MAX_MESSAGE * 2) + b'"}}\n')
    m = conn.read_line()
    conn.send(PING)
    assert conn.read_line()["id"] == 0, "the session did not go on after the oversized message"
    return m


def _oversized_framed(dm, conn):
    conn.send(b"Content-Length: 1000000000000\r\n\r\n" + b"{" * 1000)
    return conn.read_framed()


def _oversized_header_block(dm, conn):
    conn.send(b"Content-Length: 2\r\n" + b"X-Padding: " + b"y" * (MAX_MESSAGE * 2) + b"\r\n\r\n{}")
    return conn.read_framed()


def _framed_body_is_lines(dm, conn):
    # A Content-Length stream whose body is shorter than its lines: the declared bytes are not JSON.
    body = PING.strip()
    conn.send(b"Content-Length: 10\r\n\r\n" + body)
    return conn.read_framed()


def _switch_framing_mid_stream(dm, conn):
    conn.send(PING)
    assert conn.read_line()["id"] == 0
    conn.send(b"Content-Length: 2\r\n\r\n{}\n")
    return conn.read_line()


def _disconnect_mid_line_then_ask(dm, conn):
    conn.send(b'{"jsonrpc":"2.0","id":"c","method":"teacher/unload","params":{"name":"t0"')
    conn.close()
    time.sleep(0.2)
    return _error_probe(dm)


def _disconnect_mid_framed_body_then_ask(dm, conn):
    conn.send(b'Content-Length: 500\r\n\r\n{"jsonrpc":"2.0","id":"c","method":"teacher/unload"')
    conn.close()
    time.sleep(0.2)
    return _error_probe(dm)


def _disconnect_with_a_slow_request_in_flight(dm, conn):
    conn.send(line({"jsonrpc": "2.0", "id": "s", "method": "distill/score",
                    "params": {"teacher": {"path": "builtin:demo"},
                               "students": {"A": {"path": "builtin:demo-student-A"}},
                               "conventions": ["pytorch_kldiv_batchmean", "hinton"]}})
              + line({"jsonrpc": "2.0", "id": "d", "method": "distill/diagnose",
                      "params": {"dataset": "d0", "inputs": "i0"}}))
    conn.close()
    return _error_probe(dm)


def _exit_without_shutdown(dm, conn):
    conn.send(line({"jsonrpc": "2.0", "method": "exit"}))
    assert conn.sock.recv(100) == b"", "the session did not end on exit"
    return _error_probe(dm)


def _many_connections_opened_and_dropped(dm, conn):
    socks = []
    for i in range(64):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(dm.sock_path)
        if i % 3 == 0:
            s.sendall(b"Content-Length: 9")
        elif i % 3 == 1:
            s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"distilld/ping"}\n')
        socks.append(s)
    for s in socks:
        s.close()
    return _error_probe(dm)


def _half_close_keeps_reply(dm, conn):
    conn.send(line({"jsonrpc": "2.0", "id": "c", "method": "teacher/info", "params": {"name": "ghost"}}))
    conn.sock.shutdown(socket.SHUT_WR)
    return conn.read_line()


def _error_probe(dm):
    """A fresh connection's refused request, to show the daemon still serves and names things."""
    return dm.call("teacher/info", {"name": "ghost"})


def _garbage_bytes_first(dm, conn):
    conn.send(bytes(range(1, 32)) + b"\r\n\r\n")
    conn.send(framed(PING.strip()))
    first = conn.read_framed()
    return first


SOCKET = [
    Case("oversized-line", "socket", _oversized_line, 1005, {"limit": MAX_MESSAGE}, reply_id=None),
    Case("oversized-content-length", "socket", _oversized_framed, 1005, {"limit": MAX_MESSAGE}, reply_id=None),
    Case("oversized-header-block", "socket", _oversized_header_block, -32700, contains=("header",), reply_id=None),
    Case("framed-body-cut-short", "socket", _framed_body_is_lines, -32700, reply_id=None),
    Case("lines-then-a-header", "socket", _switch_framing_mid_stream, -32700, reply_id=None),
    Case("control-bytes-before-header", "socket", _garbage_bytes_first, -32700, reply_id=None),
    Case("disconnect-mid-line", "socket", _disconnect_mid_line_then_ask, 1001, reply_id="q"),
    Case("disconnect-mid-framed-body", "socket", _disconnect_mid_framed_body_then_ask, 1001, reply_id="q"),
    Case("disconnect-with-request-in-flight", "socket", _disconnect_with_a_slow_request_in_flight, 1001, reply_id="q"),
    Case("exit-without-shutdown", "socket", _exit_without_shutdown, 1001, reply_id="q"),
    Case("many-connections-dropped", "socket", _many_connections_opened_and_dropped, 1001, reply_id="q"),
    Case("half-close-still-answered", "socket", _half_close_keeps_reply, 1001, reply_id="c"),
]

CASES = WIRE + BATCH + NUMERIC + FILES + SOCKET


def _param(case):
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
    return pytest.param(case, id=f"{case.kind}-{case.id}", marks=marks)


def test_the_catalogue_is_large_and_covers_every_kind():
    kinds = {c.kind for c in CASES}
    assert kinds == {"wire", "numeric", "file", "socket"}
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES), "case ids repeat"


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input(daemon, case):
    try:
        run_case(daemon, case)
    except BaseException:
        if "fifo" in case.id:
            _unblock_fifo(daemon)
        _restore(daemon)
        raise
