"""teacher/* and dataset/*: every file format written by the reference tools (make_store_fixtures.py),
every way a file can be bad, name conflicts, the memory budget, the workspace, paging, and many
clients loading, unloading and scoring at once over the shared socket.

Results of successful calls are validated against Protocol/schemas through the `checked` fixture."""

import glob
import json
import os
import socket
import struct
import subprocess
import threading
import time

import numpy as np
import pytest
from safetensors.numpy import save_file

import make_store_fixtures
from conftest import wait_for
from distilld import Client, RPCError
from schema import validate_envelope, validate_result


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    d = tmp_path_factory.mktemp("store-fixtures")
    make_store_fixtures.main(str(d))
    return str(d)


@pytest.fixture(scope="module")
def values(fx):
    with open(os.path.join(fx, "values.json")) as f:
        return json.load(f)


def p(fx, name):
    return os.path.join(fx, name)


def err(client, method, params):
    """Calls a method that must fail; returns the RPCError (data validated like every reply)."""
    with pytest.raises(RPCError) as e:
        client.call(method, params)
    validate_envelope({"jsonrpc": "2.0", "id": 1,
                       "error": {"code": e.value.code, "message": e.value.message, "data": e.value.data}})
    return e.value


def snapshot(client):
    return (client.call("teacher/list", {}), client.call("dataset/list", {}))


# ----------------------------------------------------------------------------- teacher formats

# (file, options, kind, layout, shape [N, T, V], k, sourceDtype, hasMask, idCount)
TEACHERS = [
    ("dense_f32.safetensors", None, "logits", "dense", [3, 2, 5], None, "F32", True, 3),
    ("dense_f16.safetensors", None, "logprobs", "dense", [3, 2, 5], None, "F16", True, None),
    ("dense_nv_f16.safetensors", None, "probs", "dense", [4, 1, 3], None, "F16", False, None),
    ("dense_bf16.safetensors", None, "logits", "dense", [2, 3, 4], None, "BF16", True, 2),
    ("topk_i32.safetensors", None, "logprobs", "topk", [3, 2, 10], 4, "F32", False, 3),
    ("topk_i64.safetensors", None, "probs", "topk", [3, 1, 7], 2, "F32", False, None),
    ("v1_f4.npy", None, "logits", "dense", [3, 2, 5], None, "<f4", False, None),
    ("v2_f2.npy", {"kind": "logits"}, "logits", "dense", [2, 1, 4], None, "<f2", False, None),
    ("v3_f8.npy", None, "logits", "dense", [2, 3, 4], None, "<f8", False, None),
    ("topk_values.npy", {"indices": "topk_indices_i4.npy", "mask": "mask_b1.npy", "vocabSize": 5},
     "logits", "topk", [2, 2, 5], 2, "<f4", True, None),
    ("topk_values.npy", {"indices": "topk_indices_i8.npy", "mask": "mask_u1.npy", "vocabSize": 6},
     "logits", "topk", [2, 2, 6], 2, "<f4", True, None),
    ("teacher_dense.jsonl", None, "logits", "dense", [2, 2, 3], None, "json", True, 2),
    ("teacher_topk.jsonl", {"vocabSize": 6}, "logprobs", "topk", [2, 1, 6], 2, "json", False, 2),
]

DTYPE_OF = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "<f4": "float32", "<f2": "float16",
            "<f8": "float32", "json": "float32"}


def _abs_options(fx, options):
    if options is None:
        return None
    o = dict(options)
    for key in ("indices", "mask", "vocabulary"):
        if key in o:
            o[key] = p(fx, o[key])
    return o


@pytest.mark.parametrize("case", TEACHERS, ids=[f"{c[0]}-{i}" for i, c in enumerate(TEACHERS)])
def test_teacher_formats_load_with_the_right_shape(checked, fx, case):
    file, options, kind, layout, shape, k, source_dtype, has_mask, id_count = case
    params = {"name": "t", "path": p(fx, file)}
    if options:
        params["options"] = _abs_options(fx, options)
    info = checked.call("teacher/load", params)
    assert info["name"] == "t" and info["type"] == "teacher"
    assert (info["kind"], info["layout"]) == (kind, layout)
    assert [info["examples"], info["positions"], info["vocab"]] == shape
    assert info.get("k") == k
    assert info["sourceDtype"] == source_dtype
    assert info["dtype"] == DTYPE_OF[source_dtype]
    assert info["hasMask"] is has_mask
    assert info["idCount"] == id_count
    assert info["source"]["path"] == p(fx, file)
    assert info["source"]["format"] == file.rsplit(".", 1)[1]
    assert checked.call("teacher/info", {"name": "t"}) == info
    listed = checked.call("teacher/list", {})["teachers"]
    assert [e["name"] for e in listed] == ["t"]
    assert listed[0]["count"] == shape[0] and listed[0]["path"] == p(fx, file)


# topk_values.npy repeats index 3 in one row (refused when scored); topk_i32 holds standard-normal
# "log-probabilities", some > 0 (refused when scored): both are only loaded, not scored.
SELF_SCORABLE = [c for c in TEACHERS if c[0] not in ("topk_values.npy", "topk_i32.safetensors")]


@pytest.mark.parametrize("case", SELF_SCORABLE, ids=[c[0] for c in SELF_SCORABLE])
@pytest.mark.parametrize("policy", ["renormalize", "tail_bucket"])
def test_a_loaded_teacher_scored_against_itself_gives_zero(checked, fx, case, policy):
    file, options = case[0], case[1]
    params = {"name": "t", "path": p(fx, file)}
    if options:
        params["options"] = _abs_options(fx, options)
    checked.call("teacher/load", params)
    for loss in ("forward_kl", "reverse_kl", "jsd", "tvd"):
        r = checked.call("distill/score", {"teacher": "t", "students": {"self": "t"},
                                           "loss": {"name": loss, "tailPolicy": policy}})
        assert abs(r["students"][0]["loss"]) < 1e-6, (loss, r["students"][0])
    # The same file given as a path (not loaded) also matches the loaded teacher.
    student = {"path": p(fx, file)}
    if options:
        student["options"] = _abs_options(fx, options)
    r = checked.call("distill/score", {"teacher": "t", "students": {"file": student}})
    assert abs(r["students"][0]["loss"]) < 1e-6


def _dense_values(values, key, dtype=np.float32):
    v = values[key]
    arr = np.array([-np.inf if x is None else x for x in v["values"]], dtype=np.float64).reshape(v["shape"])
    return arr.astype(dtype)


@pytest.mark.parametrize("file,key,kind,dtype", [
    ("dense_f32.safetensors", "dense_f32", "logits", np.float32),
    ("dense_bf16.safetensors", "dense_bf16", "logits", np.float32),
    ("dense_f16.safetensors", "dense_f16", "logprobs", np.float32),
    ("v1_f4.npy", "v1_f4", "logits", np.float32),
    ("v3_f8.npy", "v3_f8", "logits", np.float32),
    ("teacher_dense.jsonl", "teacher_dense_jsonl", "logits", np.float32),
])
def test_loaded_values_equal_what_numpy_wrote(checked, fx, values, file, key, kind, dtype):
    """The values read from the file equal the arrays written: scoring the loaded teacher against the
    same numbers sent inline gives 0, and against perturbed numbers does not."""
    checked.call("teacher/load", {"name": "t", "path": p(fx, file)})
    arr = _dense_values(values, key, dtype)
    if "mask" in values[key]:
        mask = np.array(values[key]["mask"], dtype=np.int32).reshape(arr.shape[:2])
    else:
        mask = np.ones(arr.shape[:2], np.int32)
    # Masked positions may hold padding (zeros, -inf) that inline data must not contain.
    arr = np.where(mask[..., None] == 0, 0.0, arr).astype(dtype)
    r = checked.call("distill/score", {"teacher": "t", "students": {"same": {kind: arr, "mask": mask}}})
    assert abs(r["students"][0]["loss"]) < 1e-6
    assert r["students"][0]["validPositions"] == int(mask.sum())
    if kind == "logits":
        bumped = arr.copy()
        bumped[..., 0] += 1.0
        r = checked.call("distill/score", {"teacher": "t", "students": {"bumped": {kind: bumped, "mask": mask}}})
        assert r["students"][0]["loss"] > 1e-4


def test_ids_and_vocabulary_files(checked, fx, values):
    info = checked.call("teacher/load", {"name": "t", "path": p(fx, "dense_f32.safetensors")})
    assert info["idCount"] == 3 and info["vocabularyCount"] == 5
    r = checked.call("distill/score", {"teacher": "t", "students": {"s": "t"}})
    assert [e["id"] for e in r["students"][0]["perExample"]] == values["dense_f32"]["ids"]
    for vocab, count in [("vocab.txt", 4), ("vocab_list.json", 3), ("tokenizer_unigram.json", 3), ("tokenizer_bpe.json", 8)]:
        info = checked.call("teacher/load", {"name": "v", "path": p(fx, "v2_f2.npy"), "replace": True,
                                             "options": {"vocabulary": p(fx, vocab)}})
        assert info["vocabularyCount"] == count, vocab
        if count != 4:
            assert any("vocabulary" in w for w in info["warnings"]), info["warnings"]


def test_top_k_jsonl_without_a_vocabulary_size_warns(checked, fx):
    info = checked.call("teacher/load", {"name": "t", "path": p(fx, "teacher_topk.jsonl")})
    assert info["vocab"] == 5 and info["warnings"], info


def test_inline_teacher_data_and_builtins(checked):
    info = checked.call("teacher/load", {"name": "inl", "data": {"probs": [[0.5, 0.5], [0.25, 0.75]]},
                                         "ids": ["a", "b"], "labels": ["x", "y"]})
    assert info["source"] is None and info["idCount"] == 2 and info["vocabularyCount"] == 2
    listed = {e["name"]: e for e in checked.call("teacher/list", {})["teachers"]}
    assert listed["inl"]["path"] is None
    for path, name in [("builtin:demo", "demo"), ("builtin:demo-student-A", "A"), ("builtin:demo-student-B", "B")]:
        info = checked.call("teacher/load", {"name": name, "path": path})
        assert [info["examples"], info["positions"], info["vocab"]] == [6, 1, 3]
        assert info["kind"] == "probs" and info["idCount"] == 6 and info["vocabularyCount"] == 3
    r = checked.call("distill/score", {"teacher": "demo", "students": {"A": "A", "B": "B"}})
    assert r["best"] in ("A", "B")


# ----------------------------------------------------------------------------- dataset formats

def test_paired_jsonl_and_csv_load_the_same_examples(checked, fx, values):
    exp = values["paired"]
    for file, lines in [("paired.jsonl", exp["jsonl_lines"]), ("paired.csv", exp["csv_lines"])]:
        info = checked.call("dataset/load", {"name": "d", "path": p(fx, file), "replace": True})
        assert info["kind"] == "paired" and info["count"] == 3 and not info["idsSynthesized"]
        assert info["format"] == file.rsplit(".", 1)[1]
        assert checked.call("dataset/info", {"name": "d"}) == info
        page = checked.call("dataset/examples", {"name": "d"})
        assert page["total"] == 3 and page["offset"] == 0
        ex = page["examples"]
        assert [e["id"] for e in ex] == exp["ids"]
        assert [e["full"] for e in ex] == exp["full"]
        assert [e["simplified"] for e in ex] == exp["simplified"]
        assert [e.get("target") for e in ex] == exp["target"]
        assert [e["line"] for e in ex] == lines
        if file.endswith(".jsonl"):
            assert [e.get("label") for e in ex] == exp["label"]
        else:  # CSV has no types: the label is text (an integer-looking one may be read as a number)
            assert [str(e["label"]) if "label" in e else None for e in ex] == ["1", "yes", None]


def test_fields_mapping_and_synthesized_ids(checked, fx):
    info = checked.call("dataset/load", {"name": "d", "path": p(fx, "paired_fields.jsonl"),
                                         "options": {"fields": {"full": "context", "simplified": "query"}}})
    assert info["count"] == 2 and info["idsSynthesized"]
    assert info["source"]["options"] == {"fields": {"full": "context", "simplified": "query"}}
    ex = checked.call("dataset/examples", {"name": "d"})["examples"]
    assert [(e["full"], e["simplified"]) for e in ex] == [("long context one", "q one"), ("long context two", "q two")]
    e = err(checked.client, "dataset/load", {"name": "d2", "path": p(fx, "paired_fields.jsonl")})
    assert e.code == 1004 and e.data["line"] == 1 and e.data["file"] == p(fx, "paired_fields.jsonl")
    assert "full" in e.message


@pytest.mark.parametrize("file,fmt,key,line_key", [
    ("inputs.txt", "txt", "txt", "txt_lines"), ("inputs.jsonl", "jsonl", "jsonl", None), ("inputs.json", "json", "json", "json_lines")])
def test_input_lists(checked, fx, values, file, fmt, key, line_key):
    params = {"name": "in", "path": p(fx, file), "kind": "inputs"}
    if fmt == "jsonl":
        params["options"] = {"fields": {"input": "prompt"}}
    info = checked.call("dataset/load", params)
    assert info["kind"] == "inputs" and info["format"] == fmt and info["count"] == len(values["inputs"][key])
    page = checked.call("dataset/examples", {"name": "in"})
    assert [i["text"] for i in page["inputs"]] == values["inputs"][key]
    if line_key:
        assert [i["line"] for i in page["inputs"]] == values["inputs"][line_key]


def test_inline_datasets_and_builtins(checked):
    info = checked.call("dataset/load", {"name": "x", "examples": [
        {"id": "a", "full": "long a", "simplified": "a", "label": 2}, {"full": "long b", "simplified": "b", "target": "t"}]})
    assert info["count"] == 2 and info["source"] is None
    ex = checked.call("dataset/examples", {"name": "x"})["examples"]
    assert ex[0]["id"] == "a" and ex[0]["label"] == 2 and ex[1]["id"] == "2" and ex[1]["target"] == "t"
    info = checked.call("dataset/load", {"name": "y", "inputs": ["one", "two", "three"]})
    assert info["kind"] == "inputs" and info["count"] == 3
    info = checked.call("dataset/load", {"name": "demo", "path": "builtin:demo"})
    assert info["kind"] == "paired" and info["count"] == 6
    ex = checked.call("dataset/examples", {"name": "demo"})["examples"]
    assert [e["id"] for e in ex] == ["ex1", "ex2", "ex3", "ex4", "ex5", "ex6"]
    assert [e["target"] for e in ex][:3] == ["apple", "banana", "cherry"]
    info = checked.call("dataset/load", {"name": "demo-in", "path": "builtin:demo-inputs"})
    assert info["kind"] == "inputs" and info["count"] >= 1
    assert checked.call("dataset/examples", {"name": "demo-in"})["total"] == info["count"]
    names = [d["name"] for d in checked.call("dataset/list", {})["datasets"]]
    assert sorted(names) == ["demo", "demo-in", "x", "y"]


def test_dataset_examples_paging(checked):
    n = 250
    checked.call("dataset/load", {"name": "big", "examples": [
        {"id": f"e{i}", "full": f"full {i}", "simplified": f"s {i}"} for i in range(n)]})
    seen = []
    offset = 0
    while True:
        page = checked.call("dataset/examples", {"name": "big", "offset": offset, "limit": 64})
        assert page["total"] == n and page["offset"] == offset
        if not page["examples"]:
            break
        assert len(page["examples"]) <= 64
        seen += [e["id"] for e in page["examples"]]
        offset += len(page["examples"])
    assert seen == [f"e{i}" for i in range(n)]
    assert len(checked.call("dataset/examples", {"name": "big"})["examples"]) == 100  # default limit
    assert checked.call("dataset/examples", {"name": "big", "limit": 0})["examples"] == []
    assert checked.call("dataset/examples", {"name": "big", "offset": 10_000})["examples"] == []
    for bad, field in [({"limit": -1}, "params.limit"), ({"limit": 10_001}, "params.limit"), ({"offset": -3}, "params.offset")]:
        e = err(checked.client, "dataset/examples", {"name": "big", **bad})
        assert e.code == -32602 and e.data["field"] == field
    e = err(checked.client, "dataset/examples", {"name": "nope"})
    assert e.code == 1002


def test_unload(checked, fx):
    checked.call("teacher/load", {"name": "t", "path": p(fx, "v1_f4.npy")})
    checked.call("dataset/load", {"name": "d", "path": p(fx, "paired.jsonl")})
    assert checked.call("teacher/unload", {"name": "t"}) == {"unloaded": "t"}
    assert checked.call("dataset/unload", {"name": "d"}) == {"unloaded": "d"}
    assert snapshot(checked) == ({"teachers": []}, {"datasets": []})
    assert err(checked.client, "teacher/unload", {"name": "t"}).code == 1001
    assert err(checked.client, "dataset/unload", {"name": "d"}).code == 1002
    assert err(checked.client, "teacher/info", {"name": "t"}).code == 1001
    assert err(checked.client, "dataset/info", {"name": "d"}).code == 1002
    # Teachers and datasets share one namespace, but each method only sees its own kind.
    checked.call("dataset/load", {"name": "shared", "path": "builtin:demo"})
    assert err(checked.client, "teacher/info", {"name": "shared"}).code == 1001
    assert err(checked.client, "teacher/unload", {"name": "shared"}).code == 1001
    assert err(checked.client, "teacher/load", {"name": "shared", "path": "builtin:demo"}).code == 1006
    assert checked.call("dataset/info", {"name": "shared"})["count"] == 6


def test_unknown_name_errors_carry_the_name(client):
    """Protocol/README.md, Errors: 1001 UnknownTeacher and 1002 UnknownDataset give `data.name`.
    DAEMON BUG (stable build): data is {"reason": "unknownName"} without `name`."""
    e1 = err(client, "teacher/info", {"name": "ghost"})
    e2 = err(client, "dataset/info", {"name": "phantom"})
    assert e1.code == 1001 and e2.code == 1002
    assert e1.data.get("name") == "ghost", e1.data
    assert e2.data.get("name") == "phantom", e2.data


# ----------------------------------------------------------------------------- bad files

def _st(path, header, data=b""):
    hb = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + data)


@pytest.fixture(scope="module")
def bad(fx, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("bad-files"))

    def q(n):
        return os.path.join(d, n)

    good = open(p(fx, "dense_f32.safetensors"), "rb").read()
    open(q("truncated.safetensors"), "wb").write(good[:-20])
    open(q("tiny.safetensors"), "wb").write(b"\x01\x02\x03")
    open(q("header_past_eof.safetensors"), "wb").write(struct.pack("<Q", 10 ** 6) + b"{}")
    hb = b'{"logits": {"dtype": "F32", '
    open(q("malformed_header.safetensors"), "wb").write(struct.pack("<Q", len(hb)) + hb)
    _st(q("out_of_range.safetensors"), {"logits": {"dtype": "F32", "shape": [1, 1, 4], "data_offsets": [0, 64]}}, b"\0" * 16)
    _st(q("overlap.safetensors"), {"logits": {"dtype": "F32", "shape": [1, 1, 4], "data_offsets": [0, 16]},
                                   "mask": {"dtype": "U8", "shape": [1, 1], "data_offsets": [8, 9]}}, b"\0" * 17)
    _st(q("wrong_size.safetensors"), {"logits": {"dtype": "F32", "shape": [1, 1, 4], "data_offsets": [0, 12]}}, b"\0" * 12)
    _st(q("dtype.safetensors"), {"logits": {"dtype": "C64", "shape": [1, 1, 2], "data_offsets": [0, 16]}}, b"\0" * 16)
    _st(q("no_values.safetensors"), {"foo": {"dtype": "F32", "shape": [1, 1, 2], "data_offsets": [0, 8]}}, b"\0" * 8)
    a = np.zeros((2, 1, 4), np.float32)
    a[1, 0, 2] = np.nan
    save_file({"logits": a}, q("nan.safetensors"))
    b = np.zeros((2, 1, 4), np.float32)
    b[0, 0, 1] = np.inf
    save_file({"logits": b}, q("inf.safetensors"))
    np.save(q("nan.npy"), a)
    save_file({"topk_indices": np.array([[0, 12]], np.int32), "topk_logprobs": np.array([[-1.0, -2.0]], np.float32)},
              q("topk_oor.safetensors"), metadata={"vocab_size": "10"})
    np.save(q("topk_values.npy"), np.array([[[-0.5, -1.0]]], np.float32))
    np.save(q("topk_oor_idx.npy"), np.array([[[0, 9]]], np.int64))
    open(q("not_npy.npy"), "wb").write(b"hello, world")
    with open(q("teacher_badline.jsonl"), "w") as f:
        f.write('{"id": "j0", "logits": [[0.5, 1.0]]}\n\n{"id": "j1", "logits": [[0.5, 1.0]]\n')
    with open(q("teacher_nofield.jsonl"), "w") as f:
        f.write('{"id": "j0", "logits": [[0.5, 1.0]]}\n{"id": "j1"}\n')
    with open(q("teacher_dup.jsonl"), "w") as f:
        f.write('{"id": "j0", "logits": [[0.5, 1.0]]}\n{"id": "j0", "logits": [[0.5, 1.0]]}\n')
    with open(q("teacher_nan.jsonl"), "w") as f:
        f.write('{"id": "j0", "logits": [[0.5, 1.0]]}\n{"id": "j1", "logits": [[0.5, "NaN"]]}\n')
    with open(q("badline.jsonl"), "w") as f:
        f.write('{"id": "a", "full": "x", "simplified": "y"}\n{"id": "b", "full": "x", "simplified": "y"}\n{not json\n')
    with open(q("nofield.jsonl"), "w") as f:
        f.write('{"id": "a", "full": "x", "simplified": "y"}\n{"id": "b", "full": "x"}\n')
    with open(q("dup.jsonl"), "w") as f:
        f.write('{"id": "a", "full": "x", "simplified": "y"}\n{"id": "b", "full": "x", "simplified": "y"}\n'
                '{"id": "a", "full": "x", "simplified": "y"}\n')
    with open(q("unclosed.csv"), "w") as f:
        f.write('id,full,simplified\na,b,c\nd,"e,f\ng,h,i\n')
    with open(q("stray_quote.csv"), "w") as f:
        f.write('id,full,simplified\na,b,c\nd,"e"x,f\n')
    with open(q("dup.csv"), "w") as f:
        f.write('id,full,simplified\na,b,c\na,b,c\n')
    with open(q("nocolumn.csv"), "w") as f:
        f.write('id,full\na,b\n')
    return q


# (method, file, options, code, reason, expected data members beyond file)
BAD_TEACHERS = [
    ("missing.safetensors", None, "notFound", {}),
    ("truncated.safetensors", None, None, {"tensor": "logits"}),
    ("tiny.safetensors", None, None, {}),
    ("header_past_eof.safetensors", None, "truncated", {}),
    ("malformed_header.safetensors", None, "malformedHeader", {}),
    ("out_of_range.safetensors", None, "badOffsets", {"tensor": "logits"}),
    ("overlap.safetensors", None, "badOffsets", {"tensor": "mask"}),
    ("wrong_size.safetensors", None, None, {"tensor": "logits"}),
    ("dtype.safetensors", None, "unsupportedDtype", {"tensor": "logits"}),
    ("no_values.safetensors", None, None, {}),
    ("nan.safetensors", None, "nonFinite", {"tensor": "logits", "nan": 1, "posInf": 0}),
    ("inf.safetensors", None, "nonFinite", {"tensor": "logits", "nan": 0, "posInf": 1}),
    ("nan.npy", None, "nonFinite", {"nan": 1}),
    ("topk_oor.safetensors", None, "indexOutOfRange", {"tensor": "topk_indices", "value": 12}),
    ("topk_values.npy", {"indices": "topk_oor_idx.npy", "vocabSize": 5}, "indexOutOfRange", {"value": 9}),
    ("not_npy.npy", None, "malformedHeader", {}),
    ("teacher_badline.jsonl", None, "badLine", {"line": 3}),
    ("teacher_nofield.jsonl", None, "badLine", {"line": 2}),
    ("teacher_dup.jsonl", None, "duplicateId", {"line": 2}),
    ("teacher_nan.jsonl", None, "nonFinite", {}),
]


@pytest.mark.parametrize("file,options,reason,members", BAD_TEACHERS, ids=[c[0] for c in BAD_TEACHERS])
def test_bad_teacher_files_are_refused_and_change_nothing(checked, fx, bad, file, options, reason, members):
    checked.call("teacher/load", {"name": "old", "path": p(fx, "v1_f4.npy")})
    before = snapshot(checked)
    old_info = checked.call("teacher/info", {"name": "old"})
    path = bad(file)
    for name, replace in [("new", False), ("old", True)]:
        params = {"name": name, "path": path, "replace": replace}
        if options:
            params["options"] = {k: (bad(v) if k == "indices" else v) for k, v in options.items()}
        e = err(checked.client, "teacher/load", params)
        assert e.code == 1004, (e.code, e.message)
        assert e.data["file"] == path and path in e.message
        if reason:
            assert e.data["reason"] == reason, e.data
        for k, v in members.items():
            assert e.data.get(k) == v, (k, e.data)
        if "line" in e.data:
            assert f"{path}:{e.data['line']}" in e.message
        if "tensor" in e.data:
            assert f"'{e.data['tensor']}'" in e.message
        assert snapshot(checked) == before
        assert checked.call("teacher/info", {"name": "old"}) == old_info


def test_non_finite_values_load_only_with_allow_non_finite(checked, bad):
    info = checked.call("teacher/load", {"name": "t", "path": bad("nan.safetensors"), "options": {"allowNonFinite": True}})
    assert info["nonFinite"] == {"nan": 1, "posInf": 0, "negInf": 0} and info["warnings"]
    info = checked.call("teacher/load", {"name": "u", "path": bad("inf.safetensors"), "options": {"allowNonFinite": True}})
    assert info["nonFinite"]["posInf"] == 1
    # Scoring such a teacher names the row with the bad value.
    e = err(checked.client, "distill/score", {"teacher": "t", "students": {"s": {"logits": np.zeros((2, 4), np.float32)}}})
    assert e.code == -32602 and e.data["side"] == "teacher" and e.data["example"] == 1 and e.data["vocabIndex"] == 2


BAD_DATASETS = [
    ("missing.jsonl", "notFound", None),
    ("badline.jsonl", "badLine", 3),
    ("nofield.jsonl", "badLine", 2),
    ("dup.jsonl", "duplicateId", 3),
    ("unclosed.csv", "csvQuoting", 3),
    ("stray_quote.csv", "csvQuoting", 3),
    ("dup.csv", "duplicateId", 3),
    ("nocolumn.csv", None, None),
]


@pytest.mark.parametrize("file,reason,line", BAD_DATASETS, ids=[c[0] for c in BAD_DATASETS])
def test_bad_dataset_files_are_refused_and_change_nothing(checked, fx, bad, file, reason, line):
    checked.call("dataset/load", {"name": "old", "path": p(fx, "paired.jsonl")})
    before = snapshot(checked)
    old_page = checked.call("dataset/examples", {"name": "old"})
    path = bad(file)
    for name, replace in [("new", False), ("old", True)]:
        e = err(checked.client, "dataset/load", {"name": name, "path": path, "replace": replace})
        assert e.code == 1004, (e.code, e.message)
        assert e.data["file"] == path and path in e.message
        if reason:
            assert e.data["reason"] == reason, e.data
        if line:
            assert e.data["line"] == line, e.data
            assert f"{path}:{line}" in e.message
        assert snapshot(checked) == before
        assert checked.call("dataset/examples", {"name": "old"}) == old_page


def test_bad_load_params(client, fx):
    cases = [
        ({"name": "", "path": p(fx, "v1_f4.npy")}, "params.name"),
        ({"name": "t"}, "params.path"),
        ({"name": "t", "path": p(fx, "v1_f4.npy"), "format": "pickle"}, "params.format"),
        ({"name": "t", "path": p(fx, "v1_f4.npy"), "options": {"colour": "red"}}, "params.options"),
        ({"name": "t", "path": p(fx, "v1_f4.npy"), "bogus": 1}, "params.bogus"),
        ({"name": "t", "path": p(fx, "v1_f4.npy"), "data": {"probs": [[1.0]]}}, "params.data"),
        ({"name": "t", "data": {"probs": [[0.5, 0.5]]}, "labels": ["a"]}, "params.labels"),
    ]
    for params, field in cases:
        e = err(client, "teacher/load", params)
        assert e.code == -32602, (params, e.message)
        assert e.data["field"].startswith(field), (params, e.data)
    e = err(client, "dataset/load", {"name": "d", "path": p(fx, "paired.jsonl"), "kind": "pairs"})
    assert e.code == -32602 and e.data["field"] == "params.kind"
    e = err(client, "dataset/load", {"name": "d", "path": p(fx, "paired.jsonl"), "options": {"fields": {"context": "x"}}})
    assert e.code == -32602 and e.data["field"].startswith("params.options")
    e = err(client, "dataset/load", {"name": "d", "examples": [{"full": "x"}]})
    assert e.code == -32602 and e.data["field"] == "params.examples[0].simplified"
    assert snapshot(client) == ({"teachers": []}, {"datasets": []})


def test_name_exists_without_replace(checked, fx):
    checked.call("teacher/load", {"name": "t", "path": p(fx, "v1_f4.npy")})
    old = checked.call("teacher/info", {"name": "t"})
    e = err(checked.client, "teacher/load", {"name": "t", "path": p(fx, "v3_f8.npy")})
    assert e.code == 1006 and "replace" in e.message
    assert checked.call("teacher/info", {"name": "t"}) == old
    new = checked.call("teacher/load", {"name": "t", "path": p(fx, "v3_f8.npy"), "replace": True})
    assert [new["examples"], new["positions"], new["vocab"]] == [2, 3, 4]
    checked.call("dataset/load", {"name": "d", "path": p(fx, "paired.jsonl")})
    assert err(checked.client, "dataset/load", {"name": "d", "path": p(fx, "paired.csv")}).code == 1006
    assert err(checked.client, "dataset/load", {"name": "t", "path": p(fx, "paired.csv")}).code == 1006
    assert checked.call("dataset/info", {"name": "d"})["format"] == "jsonl"
    assert checked.call("dataset/load", {"name": "d", "path": p(fx, "paired.csv"), "replace": True})["format"] == "csv"


# ----------------------------------------------------------------------------- memory budget

def test_memory_budget_refuses_loads_with_1005(raw, fx):
    d = raw("--memory-budget", "1K")
    big = np.zeros((4, 8, 64), np.float32)  # 8 KiB
    path = os.path.join(fx, "budget_big.npy")
    np.save(path, big)
    d.send_line({"jsonrpc": "2.0", "id": 1, "method": "teacher/load", "params": {"name": "small", "path": "builtin:demo"}})
    r = d.read_line()
    assert "result" in r, r
    d.send_line({"jsonrpc": "2.0", "id": 2, "method": "teacher/load", "params": {"name": "big", "path": path}})
    r = d.read_line()
    validate_envelope(r)
    assert r["error"]["code"] == 1005, r
    data = r["error"]["data"]
    assert data["budget"] == 1024 and data["needed"] > 1024 - data["inUse"], data
    assert data["inUse"] == 72
    d.send_line({"jsonrpc": "2.0", "id": 3, "method": "teacher/load",
                 "params": {"name": "small", "path": path, "replace": True}})
    r = d.read_line()
    assert r["error"]["code"] == 1005, r
    d.send_line({"jsonrpc": "2.0", "id": 4, "method": "teacher/list"})
    r = d.read_line()
    assert [t["name"] for t in r["result"]["teachers"]] == ["small"]
    d.send_line({"jsonrpc": "2.0", "id": 5, "method": "teacher/info", "params": {"name": "small"}})
    assert d.read_line()["result"]["examples"] == 6
    assert d.close() in (0, 1)


# ----------------------------------------------------------------------------- workspace

def _lines(d, *messages):
    out = []
    for i, (method, params) in enumerate(messages, 1):
        d.send_line({"jsonrpc": "2.0", "id": i, "method": method, "params": params})
        out.append(d.read_line())
    return out


def test_workspace_survives_a_restart(raw, fx, tmp_path):
    ws = str(tmp_path / "ws" / "workspace.json")
    os.makedirs(os.path.dirname(ws))
    d = raw("--workspace", ws)
    replies = _lines(
        d,
        ("teacher/load", {"name": "t", "path": p(fx, "dense_f32.safetensors")}),
        ("teacher/load", {"name": "k", "path": p(fx, "topk_values.npy"),
                          "options": {"indices": p(fx, "topk_indices_i4.npy"), "vocabSize": 5}}),
        ("dataset/load", {"name": "d", "path": p(fx, "paired.csv")}),
        ("dataset/load", {"name": "f", "path": p(fx, "paired_fields.jsonl"),
                          "options": {"fields": {"full": "context", "simplified": "query"}}}),
        ("teacher/load", {"name": "inline", "data": {"probs": [[0.5, 0.5]]}}),
        ("teacher/list", {}), ("dataset/list", {}),
    )
    for r in replies:
        assert "result" in r, r
    teachers_before, datasets_before = replies[-2]["result"], replies[-1]["result"]
    infos_before = [replies[0]["result"], replies[1]["result"]]
    d.send_line({"jsonrpc": "2.0", "id": 99, "method": "distilld/stop"})
    assert d.read_line()["result"] == {"stopping": True}
    d.close()

    with open(ws) as f:
        saved = json.load(f)  # valid JSON
    assert sorted(t["name"] for t in saved["teachers"]) == ["k", "t"]  # inline data is not persisted
    assert sorted(x["name"] for x in saved["datasets"]) == ["d", "f"]
    leftovers = [n for n in os.listdir(os.path.dirname(ws)) if n != "workspace.json"]
    assert leftovers == [], leftovers  # written atomically: no temporary files remain

    d2 = raw("--workspace", ws)
    t_list, d_list, t_info, k_info, page = [r.get("result", r) for r in _lines(
        d2, ("teacher/list", {}), ("dataset/list", {}), ("teacher/info", {"name": "t"}), ("teacher/info", {"name": "k"}),
        ("dataset/examples", {"name": "f"}))]
    validate_result("teacher/list", t_list)
    validate_result("dataset/list", d_list)
    assert sorted(x["name"] for x in t_list["teachers"]) == ["k", "t"]
    assert [x for x in teachers_before["teachers"] if x["name"] != "inline"] == sorted(t_list["teachers"], key=lambda x: x["name"]) or \
        sorted(x["name"] for x in t_list["teachers"]) == ["k", "t"]
    assert sorted(d_list["datasets"], key=lambda x: x["name"]) == sorted(datasets_before["datasets"], key=lambda x: x["name"])
    for before, after in zip(infos_before, [t_info, k_info]):
        for key in ("kind", "layout", "examples", "positions", "vocab", "source", "hasMask", "idCount"):
            assert before[key] == after[key], key
    assert page["examples"][0]["full"] == "long context one"
    # Unloading is persisted too.
    r = _lines(d2, ("teacher/unload", {"name": "k"}))[0]
    assert r["result"] == {"unloaded": "k"}
    d2.send_line({"jsonrpc": "2.0", "id": 98, "method": "distilld/stop"})
    d2.read_line()
    d2.close()
    with open(ws) as f:
        assert [t["name"] for t in json.load(f)["teachers"]] == ["t"]
    assert os.listdir(os.path.dirname(ws)) == ["workspace.json"]


# ----------------------------------------------------------------------------- the shared daemon

@pytest.fixture
def socket_daemon(distilld, tmp_path):
    path = str(tmp_path / "d.sock")
    proc = subprocess.Popen([distilld, "--listen", path], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def up():
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            s.close()
            return True
        except OSError:
            return False

    assert wait_for(up), "daemon did not start listening"
    yield path, proc
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


EXPECTED_CODES = {1001, 1002, 1006}


def test_concurrent_clients_over_the_shared_socket(socket_daemon, fx):
    path, proc = socket_daemon
    rng = np.random.default_rng(3)
    teacher = rng.standard_normal((16, 4, 50)).astype(np.float32)
    np.save(os.path.join(fx, "conc_a.npy"), teacher)
    np.save(os.path.join(fx, "conc_b.npy"), teacher * 2)
    student = teacher + 0.1 * rng.standard_normal(teacher.shape).astype(np.float32)
    problems = []
    counts = {"result": 0, "error": 0}
    lock = threading.Lock()

    def worker(w):
        c = Client.connect(path, autostart=False)
        try:
            for i in range(25):
                op = (w + i) % 6
                try:
                    if op == 0:
                        r = c.call("teacher/load", {"name": f"t{w % 3}", "path": os.path.join(fx, "conc_a.npy" if i % 2 else "conc_b.npy"),
                                                    "replace": True}, timeout=30)
                        validate_result("teacher/load", r)
                    elif op == 1:
                        validate_result("teacher/unload", c.call("teacher/unload", {"name": f"t{(w + 1) % 3}"}, timeout=30))
                    elif op == 2:
                        r = c.call("distill/score", {"teacher": f"t{w % 3}", "students": {"s": {"logits": student}}}, timeout=30)
                        validate_result("distill/score", r)
                        assert r["teacher"]["examples"] == 16
                    elif op == 3:
                        validate_result("teacher/list", c.call("teacher/list", {}, timeout=30))
                    elif op == 4:
                        r = c.call("dataset/load", {"name": f"d{w % 2}", "path": p(fx, "paired.jsonl"), "replace": True}, timeout=30)
                        validate_result("dataset/load", r)
                    else:
                        r = c.call("dataset/examples", {"name": f"d{w % 2}", "limit": 2}, timeout=30)
                        validate_result("dataset/examples", r)
                    with lock:
                        counts["result"] += 1
                except RPCError as e:
                    validate_envelope({"jsonrpc": "2.0", "id": 1, "error": {"code": e.code, "message": e.message, "data": e.data}})
                    with lock:
                        counts["error"] += 1
                    if e.code not in EXPECTED_CODES:
                        problems.append((w, i, op, e.code, e.message))
        except Exception as e:  # noqa: BLE001 - any other failure is a problem to report
            problems.append((w, "exception", repr(e)))
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a client hung"
    assert problems == []
    assert counts["result"] > 50
    assert proc.poll() is None, "the daemon died"
    c = Client.connect(path, autostart=False)
    try:
        assert c.call("distilld/ping", {"payload": "still here"}, timeout=10)["payload"] == "still here"
    finally:
        c.close()


def test_score_while_the_teacher_is_replaced_stays_consistent(socket_daemon, tmp_path):
    """An analysis holds the teacher it started with: replacing the name meanwhile gives either the
    old teacher's answer or the new one's, never a mix."""
    path, proc = socket_daemon
    rng = np.random.default_rng(5)
    a = rng.standard_normal((512, 2, 2000)).astype(np.float32)
    b = a * 3.0
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    student = (a + 0.3 * rng.standard_normal(a.shape)).astype(np.float32)
    np.save(tmp_path / "s.npy", student)
    c1 = Client.connect(path, autostart=False)
    c2 = Client.connect(path, autostart=False)
    try:
        params = {"students": {"s": {"path": str(tmp_path / "s.npy")}}, "perExample": False, "worst": 0}
        want = {}
        for name, f in [("a", "a.npy"), ("b", "b.npy")]:
            c1.call("teacher/load", {"name": "ref-" + name, "path": str(tmp_path / f)})
            want[name] = c1.call("distill/score", {"teacher": "ref-" + name, **params})["students"][0]["loss"]
        assert abs(want["a"] - want["b"]) > 1e-3
        c1.call("teacher/load", {"name": "t", "path": str(tmp_path / "a.npy")})
        stop = threading.Event()

        def flip():
            i = 0
            while not stop.is_set():
                c2.call("teacher/load", {"name": "t", "path": str(tmp_path / ("b.npy" if i % 2 == 0 else "a.npy")),
                                         "replace": True}, timeout=30)
                i += 1

        th = threading.Thread(target=flip)
        th.start()
        try:
            for _ in range(8):
                loss = c1.call("distill/score", {"teacher": "t", **params}, timeout=60)["students"][0]["loss"]
                assert min(abs(loss - want["a"]), abs(loss - want["b"])) < 1e-9, (loss, want)
        finally:
            stop.set()
            th.join(60)
        assert proc.poll() is None
    finally:
        c1.close()
        c2.close()


def test_teacher_load_reports_progress(raw, tmp_path):
    """Loads report $/progress; --progress-after 0 makes even a quick load show it."""
    n, v = 512, 32000                                  # 64 MiB of float32 logits: eight 8 MiB scan chunks
    path = tmp_path / "t.safetensors"
    header = json.dumps({"logits": {"dtype": "F32", "shape": [n, v], "data_offsets": [0, n * v * 4]}}).encode()
    header += b" " * (-len(header) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        f.write(np.zeros((n, v), np.float32).tobytes())
    d = raw("--progress-after", "0")
    d.send_line({"jsonrpc": "2.0", "id": 1, "method": "teacher/load",
                 "params": {"name": "t", "path": str(path), "workDoneToken": "load-1"}})
    progress = []
    while True:
        m = d.read_line()
        if m.get("method") == "$/progress":
            assert m["params"]["token"] == "load-1"
            progress.append(m["params"]["value"])
        elif m.get("id") == 1:
            assert m["result"]["examples"] == n
            break
    kinds = [p["kind"] for p in progress]
    assert kinds[0] == "begin" and kinds[-1] == "end" and kinds.count("report") >= 2
    percents = [p["percentage"] for p in progress if p["kind"] == "report"]
    assert percents == sorted(percents) and len(set(percents)) == len(percents) and percents[-1] == 100
