"""One loading path (issue #11): a file an analysis names for its own use (a model's
{"path": ...}, diagnose's training inputs) is read through the registry, under the same
--memory-budget as teacher/load and dataset/load, and held only while the request runs."""

import os
import subprocess

import numpy as np
import pytest

from distilld import Client, RPCError

BUDGET = 64 * 1024


@pytest.fixture
def budgeted(distilld):
    c = Client.start(distilld, args=["--memory-budget", str(BUDGET)], stderr=subprocess.DEVNULL)
    yield c
    c.close()


def error_of(client, method, params):
    with pytest.raises(RPCError) as e:
        client.call(method, params)
    return e.value


def logits_file(tmp_path, name, rows, vocab=1024):
    """An .npy of float32 logits; what a load of it reserves is its size on disk."""
    path = str(tmp_path / name)
    np.save(path, np.random.default_rng(rows).normal(size=(rows, vocab)).astype(np.float32))
    return path, os.path.getsize(path)


def nothing_in_use(client):
    status = client.call("distilld/status", {})
    assert status["memory"]["entriesResidentBytes"] == 0 and status["memory"]["entriesMappedBytes"] == 0, status
    assert client.call("teacher/list", {}) == {"teachers": []}


def test_a_named_file_that_does_not_fit_is_refused_as_a_load_of_it_is(budgeted, tmp_path):
    big, size = logits_file(tmp_path, "big.npy", rows=20)  # 80 KiB
    assert size > BUDGET
    load = error_of(budgeted, "teacher/load", {"name": "t", "path": big})
    assert load.code == 1005 and load.data == {"reason": "budgetExceeded", "budget": BUDGET, "needed": size, "inUse": 0}
    score = error_of(budgeted, "distill/score", {"teacher": {"path": big}, "students": {"A": {"path": big}}})
    assert score.code == load.code and score.data == load.data, (score.code, score.data)
    explain = error_of(budgeted, "distill/explain", {"teacher": {"path": big}, "students": {"A": {"path": big}}})
    assert explain.code == load.code and explain.data == load.data, (explain.code, explain.data)
    # Training inputs read from a file are held to the budget too.
    inputs = str(tmp_path / "inputs.txt")
    with open(inputs, "w") as f:
        f.write(("a training input of some length\n") * 3000)
    budgeted.call("dataset/load", {"name": "demo", "path": "builtin:demo"})
    as_load = error_of(budgeted, "dataset/load", {"name": "i", "path": inputs, "kind": "inputs"})
    diagnose = error_of(budgeted, "distill/diagnose", {"dataset": "demo", "inputs": {"path": inputs}})
    assert as_load.code == 1005 and diagnose.code == 1005 and diagnose.data == as_load.data, (diagnose.data, as_load.data)
    budgeted.call("dataset/unload", {"name": "demo"})
    nothing_in_use(budgeted)


def test_what_a_request_read_is_given_back_when_it_ends(budgeted, tmp_path):
    small, small_size = logits_file(tmp_path, "small.npy", rows=4)  # 16 KiB
    large, large_size = logits_file(tmp_path, "large.npy", rows=10)  # 40 KiB
    assert 3 * small_size <= BUDGET < 3 * small_size + large_size and large_size <= BUDGET
    # Three copies of the small file fit beside each other during the request ...
    r = budgeted.call("distill/score", {"teacher": {"path": small}, "students": {"A": {"path": small}, "B": {"path": small}}})
    assert r["students"][0]["loss"] == 0.0
    # ... and none of them is left: the large file, which would not fit beside them, loads.
    budgeted.call("teacher/load", {"name": "large", "path": large})
    budgeted.call("teacher/unload", {"name": "large"})
    # A request that fails after reading a file gives it back too.
    e = error_of(budgeted, "distill/score", {"teacher": {"path": small}, "students": {"A": {"path": str(tmp_path / "none.npy")}}})
    assert e.code == 1004 and e.data["reason"] == "notFound", e.data
    budgeted.call("teacher/load", {"name": "large", "path": large})
    # While a named entry holds most of the budget, a request's file that does not fit beside it is refused ...
    e = error_of(budgeted, "distill/score", {"teacher": {"path": large}, "students": {"A": {"path": small}}})
    assert e.code == 1005 and e.data == {"reason": "budgetExceeded", "budget": BUDGET, "needed": large_size, "inUse": large_size}
    # ... and one that does is read.
    inline = np.zeros((4, 1024), np.float32).tolist()
    r = budgeted.call("distill/score", {"teacher": {"path": small}, "students": {"A": {"logits": inline}}})
    assert r["teacher"]["source"] == small and r["students"][0]["loss"] > 0
    budgeted.call("teacher/unload", {"name": "large"})
    nothing_in_use(budgeted)
