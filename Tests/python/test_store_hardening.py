"""Files that are not what a load expects, and files that change after loading (issue #10, items
4, 14, 15, 18 and #19's budget): every case gets an error naming the file (and the line, tensor or
field), and the daemon keeps serving: each test ends with a request that must still succeed."""

import json
import os
import subprocess
import time

import numpy as np
import pytest
from safetensors.numpy import save_file

from distilld import Client, RPCError


def npy_with_header(path, header, body=b""):
    h = header.encode()
    while (10 + len(h) + 1) % 64:
        h += b" "
    h += b"\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h + body)


def error_of(client, method, params):
    with pytest.raises(RPCError) as e:
        client.call(method, params)
    return e.value


def still_serving(client):
    assert client.call("distilld/ping", {}) is not None
    r = client.call("distill/score", {"teacher": {"logits": [[0.0, 1.0]]}, "students": {"s": {"logits": [[0.0, 1.0]]}}})
    assert abs(r["students"][0]["loss"]) < 1e-9


def two_logits(n=4, v=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, v)).astype(np.float32)


# ----------------------------------------------------------------------------- 14: sizes from files

@pytest.mark.parametrize("shape", ["(4294967296, 4294967296)", "(4611686018427387904, 1)", "(2, 4611686018427387904)"])
def test_an_npy_shape_whose_size_overflows_is_refused_and_the_daemon_lives(client, tmp_path, shape):
    path = str(tmp_path / "huge.npy")
    npy_with_header(path, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % shape, b"\0" * 16)
    e = error_of(client, "teacher/load", {"name": "t", "path": path})
    assert e.code == 1004, e
    assert e.data["file"] == path and e.data["reason"] == "tooLarge", e.data
    assert "'shape'" in e.message
    still_serving(client)


def test_a_safetensors_shape_whose_size_overflows_is_refused(client, tmp_path):
    header = json.dumps({"logits": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 16]}}).encode()
    path = str(tmp_path / "huge.safetensors")
    with open(path, "wb") as f:
        f.write(len(header).to_bytes(8, "little") + header + b"\0" * 16)
    e = error_of(client, "teacher/load", {"name": "t", "path": path})
    assert e.code == 1004 and e.data["file"] == path and e.data["tensor"] == "logits", e.data
    still_serving(client)


def test_json_lines_rows_whose_padding_exceeds_the_budget_are_refused_before_allocating(distilld, tmp_path):
    # 2000 rows of one position and one row of 20000 positions, V = 1: padding makes 2001 × 20000 × 4 B = 160 MB.
    path = str(tmp_path / "ragged.jsonl")
    with open(path, "w") as f:
        f.write(json.dumps({"logits": [[0.0]] * 20000}) + "\n")
        for _ in range(2000):
            f.write('{"logits": [[0.0]]}\n')
    c = Client.start(distilld, args=["--memory-budget", "16M"], stderr=subprocess.DEVNULL)
    try:
        e = error_of(c, "teacher/load", {"name": "t", "path": path})
        assert e.code == 1005 and e.data["file"] == path and e.data["line"] == 1, (e.code, e.data)
        still_serving(c)
    finally:
        c.close()


def test_a_json_lines_line_longer_than_the_budget_allows_is_refused_naming_it(distilld, tmp_path):
    path = str(tmp_path / "long.jsonl")
    with open(path, "w") as f:
        f.write(json.dumps({"logits": [0.5, 0.25]}) + "\n")
        f.write(json.dumps({"logits": [0.0] * 400_000}) + "\n")  # 2 MB line under a 4 MB budget
    c = Client.start(distilld, args=["--memory-budget", "4M"], stderr=subprocess.DEVNULL)
    try:
        e = error_of(c, "teacher/load", {"name": "t", "path": path})
        assert e.code == 1004 and e.data["reason"] == "tooLarge" and e.data["line"] == 2, (e.code, e.data)
        assert e.data["limit"] == 4 * 1024 * 1024 // 16
        ds = str(tmp_path / "long_ds.jsonl")
        with open(ds, "w") as f:
            f.write(json.dumps({"full": "a", "simplified": "b"}) + "\n")
            f.write(json.dumps({"full": "x" * 400_000, "simplified": "b"}) + "\n")
        e = error_of(c, "dataset/load", {"name": "d", "path": ds})
        assert e.code == 1004 and e.data["reason"] == "tooLarge" and e.data["line"] == 2, (e.code, e.data)
        still_serving(c)
    finally:
        c.close()


# ----------------------------------------------------------------------------- 4: only regular files

def test_a_fifo_a_directory_and_a_device_are_refused_without_blocking(client, tmp_path):
    fifo = str(tmp_path / "pipe.safetensors")
    os.mkfifo(fifo)
    cases = [(fifo, "FIFO"), (str(tmp_path), "directory"), ("/dev/zero", "character device")]
    for method in ("teacher/load", "dataset/load"):
        for path, what in cases:
            start = time.monotonic()
            e = error_of(client, method, {"name": "x", "path": path})
            assert time.monotonic() - start < 5
            assert e.code == 1004 and e.data["file"] == path and e.data["reason"] == "unreadable", e.data
            assert what in e.message, e.message
    still_serving(client)


# ----------------------------------------------------------------------------- 18: inputs that must be refused

def test_a_nul_inside_a_path_is_refused_naming_the_field(client, tmp_path):
    good = str(tmp_path / "good.safetensors")
    save_file({"logits": two_logits()}, good)
    e = error_of(client, "teacher/load", {"name": "t", "path": good + "\u0000/../../etc/passwd"})
    assert e.code == -32602 and e.data["field"] == "params.path", (e.code, e.data)
    e = error_of(client, "teacher/load", {"name": "t", "path": good, "options": {"vocabulary": good + "\u0000x"}})
    assert e.code == -32602 and e.data["field"] == "params.options.vocabulary", (e.code, e.data)
    e = error_of(client, "dataset/load", {"name": "d", "path": good + "\u0000.jsonl"})
    assert e.code == -32602 and e.data["field"] == "params.path", (e.code, e.data)
    assert client.call("teacher/list", {})["teachers"] == []
    still_serving(client)


def test_invalid_utf8_is_refused_in_csv_and_text_as_in_json_lines_naming_line_and_column(client, tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_bytes(b"id,full,simplified\na,ok,ok\nb,caf\xe9,x\n")
    e = error_of(client, "dataset/load", {"name": "d", "path": str(csv)})
    assert e.code == 1004 and e.data["reason"] == "invalidUTF8", e.data
    assert e.data["line"] == 3 and e.data["column"] == 6 and e.data["byte"] == 32, e.data
    txt = tmp_path / "bad.txt"
    txt.write_bytes(b"fine\n\xff\xfe oops\n")
    e = error_of(client, "dataset/load", {"name": "d", "path": str(txt), "kind": "inputs"})
    assert e.code == 1004 and e.data["reason"] == "invalidUTF8" and e.data["line"] == 2 and e.data["column"] == 1, e.data
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_bytes(b'{"full": "ok", "simplified": "ok"}\n{"full": "caf\xe9", "simplified": "x"}\n')
    e = error_of(client, "dataset/load", {"name": "d", "path": str(jsonl)})
    assert e.code == 1004 and e.data["line"] == 2, e.data
    still_serving(client)


def test_duplicate_top_k_indices_are_refused_at_load_naming_tensor_row_and_index(client, tmp_path):
    idx = np.array([[[0, 1, 2]], [[3, 5, 3]]], dtype=np.int64)
    vals = np.array([[[0.5, 0.2, 0.1]], [[0.4, 0.3, 0.2]]], dtype=np.float32)
    path = str(tmp_path / "dup.safetensors")
    save_file({"topk_indices": idx, "topk_logits": vals}, path, metadata={"vocab_size": "8"})
    e = error_of(client, "teacher/load", {"name": "t", "path": path})
    assert e.code == 1004 and e.data["reason"] == "duplicateIndex" and e.data["tensor"] == "topk_indices", e.data
    assert (e.data["example"], e.data["position"], e.data["index"]) == (1, 0, 3), e.data
    # Inline top-k data: the same check, naming the request member.
    e = error_of(client, "teacher/load", {"name": "t", "data": {"topk": {
        "indices": idx.tolist(), "values": vals.tolist(), "kind": "logits", "vocab": 8}}})
    assert e.code == -32602 and e.data["field"] == "params.data.topk.indices", (e.code, e.data)
    assert (e.data["example"], e.data["position"], e.data["index"]) == (1, 0, 3), e.data
    assert client.call("teacher/list", {})["teachers"] == []
    still_serving(client)


# ----------------------------------------------------------------------------- 15: files that change after loading

def score_self(client):
    return client.call("distill/score", {"teacher": "t", "students": {"self": "t"}})


def test_truncating_a_loaded_safetensors_file_fails_the_next_score_naming_it(client, tmp_path):
    path = str(tmp_path / "t.safetensors")
    save_file({"logits": two_logits(64, 4096)}, path)
    client.call("teacher/load", {"name": "t", "path": path})
    assert abs(score_self(client)["students"][0]["loss"]) < 1e-6
    os.truncate(path, 4096)
    e = error_of(client, "distill/score", {"teacher": "t", "students": {"self": "t"}})
    assert e.code == 1004 and e.data["reason"] == "fileChanged" and e.data["file"] == path, (e.code, e.data)
    assert "reload" in e.message.lower()
    # Reloading it reads it again (and the truncated file is now refused as truncated).
    e = error_of(client, "teacher/load", {"name": "t", "path": path, "replace": True})
    assert e.code == 1004 and e.data["file"] == path
    still_serving(client)


def test_np_save_over_a_loaded_npy_fails_the_next_score_then_a_reload_sees_the_new_data(client, tmp_path):
    path = str(tmp_path / "t.npy")
    np.save(path, two_logits(64, 4096, seed=1))
    client.call("teacher/load", {"name": "t", "path": path})
    student = {"logits": two_logits(64, 4096, seed=1).tolist()}
    assert abs(client.call("distill/score", {"teacher": "t", "students": {"s": student}})["students"][0]["loss"]) < 1e-6
    np.save(path, two_logits(8, 16, seed=2))  # the export script ran again: smaller array, same path
    e = error_of(client, "distill/score", {"teacher": "t", "students": {"s": student}})
    assert e.code == 1004 and e.data["reason"] == "fileChanged" and e.data["file"] == path, (e.code, e.data)
    info = client.call("teacher/load", {"name": "t", "path": path, "replace": True})
    assert info["examples"] == 8
    assert abs(score_self(client)["students"][0]["loss"]) < 1e-6
    still_serving(client)


def test_a_same_size_overwrite_in_place_is_detected(client, tmp_path):
    path = str(tmp_path / "t.npy")
    a = np.array([[0.0, 0.0]], np.float32)
    np.save(path, a)
    client.call("teacher/load", {"name": "t", "path": path})
    s = {"logits": [[0.0, 0.0]]}
    assert abs(client.call("distill/score", {"teacher": "t", "students": {"s": s}})["students"][0]["loss"]) < 1e-9
    time.sleep(0.02)
    with open(path, "r+b") as f:  # same size, same inode, other values
        f.seek(-8, os.SEEK_END)
        f.write(np.array([10.0, 0.0], np.float32).tobytes())
    e = error_of(client, "distill/score", {"teacher": "t", "students": {"s": s}})
    assert e.code == 1004 and e.data["reason"] == "fileChanged" and e.data["file"] == path, (e.code, e.data)
    # Listing, inspecting and unloading still work.
    assert client.call("teacher/info", {"name": "t"})["examples"] == 1
    client.call("teacher/unload", {"name": "t"})
    still_serving(client)


def test_replacing_a_loaded_file_under_its_path_is_detected(client, tmp_path):
    path = str(tmp_path / "t.safetensors")
    save_file({"logits": two_logits()}, path)
    client.call("teacher/load", {"name": "t", "path": path})
    tmp = str(tmp_path / "new.safetensors")
    save_file({"logits": two_logits(seed=3)}, tmp)
    os.replace(tmp, path)
    e = error_of(client, "distill/score", {"teacher": "t", "students": {"self": "t"}})
    assert e.code == 1004 and e.data["reason"] == "fileChanged" and e.data["file"] == path, (e.code, e.data)
    still_serving(client)
