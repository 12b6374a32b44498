"""Every method `initialize` announces answers at least one real request whose params and result
validate against Protocol/schemas, so a method cannot be announced with a result nobody checks."""

import os
import subprocess
import tempfile

from distilld import Client
from schema import ROOT, CheckedClient

# A committed ARPA file: the model/* methods need no generated fixture.
ARPA = os.path.join(ROOT, "Tests", "python", "fixtures", "ngram", "handwritten.arpa")

EXPORT = os.path.join(tempfile.mkdtemp(prefix="distilld-schemas-"), "targets.safetensors")

# One session's worth of calls, one or more per method, in an order that works: loads before
# the analyses that use them, unloads and shutdown last. The builtins need no files.
SESSION = [
    ("initialize", {"capabilities": {}}),
    ("distilld/ping", {"payload": {"any": [1, None]}}),
    ("distilld/status", {}),
    ("teacher/load", {"name": "t", "path": "builtin:demo"}),
    ("teacher/list", {}),
    ("teacher/info", {"name": "t"}),
    ("dataset/load", {"name": "d", "path": "builtin:demo"}),
    ("dataset/load", {"name": "inputs", "path": "builtin:demo-inputs", "kind": "inputs"}),
    ("dataset/list", {}),
    ("dataset/info", {"name": "d"}),
    ("dataset/examples", {"name": "d", "limit": 2}),
    ("distill/score", {"teacher": "t", "dataset": "d", "conventions": ["hinton"],
                       "students": {"A": {"path": "builtin:demo-student-A"},
                                    "B": {"probs": [[0.8, 0.1, 0.1]] * 6}}}),
    ("distill/sequence", {"teacher": [0.5, 0.3, 0.1], "labels": ["a", "b", "c"],
                          "students": {"A": {"logprobs": [-1.0, -1.5, -2.0]}}}),
    ("distill/diagnose", {"dataset": "d", "inputs": "inputs",
                          "contextGap": {"teacherFull": "t", "teacherSimplified": {"path": "builtin:demo-student-B"},
                                         "student": {"path": "builtin:demo-student-A"}}}),
    ("distill/explain", {"teacher": "t", "students": {"A": {"path": "builtin:demo-student-A"}}, "example": "ex1"}),
    ("model/load", {"name": "lm", "path": ARPA}),
    ("model/load", {"name": "built", "build": {"dataset": "d", "order": 2, "discountFallback": [0.5, 1, 1.5]}}),
    ("model/list", {}),
    ("model/info", {"name": "lm"}),
    ("model/tokenize", {"model": "lm", "text": "a b café"}),
    ("model/detokenize", {"model": "lm", "tokens": [1, 2, 3]}),
    ("model/logprobs", {"model": "lm", "texts": ["a b c", "café 1999 zebra"], "topk": 2, "full": True}),
    ("model/logprobs", {"model": "lm", "tokens": [[0, 3, 4]]}),
    ("model/generate", {"model": "lm", "prompt": "a", "maxTokens": 3, "n": 2, "seed": 1, "stop": ["zz"]}),
    ("teacher/export", {"model": "lm", "dataset": "d", "path": EXPORT, "k": 2, "overwrite": True}),
    ("teacher/generate", {"model": "lm", "dataset": "d", "n": 2, "maxTokens": 2, "limit": 2, "seed": 3}),
    ("distill/sequence", {"teacher": {"model": "lm", "prompt": "a"}, "candidates": ["b", "c d"],
                          "students": {"S": {"model": "lm", "prompt": "b"}}}),
    ("distill/audit", {"teacher": "t", "student": {"path": "builtin:demo-student-A"}, "ks": [1, 2], "bound": 0.5}),
    ("model/unload", {"name": "built"}),
    ("teacher/unload", {"name": "t"}),
    ("dataset/unload", {"name": "d"}),
    ("shutdown", None),
]


def test_every_announced_method_has_a_checked_reply(distilld):
    called = set()
    with Client.start(distilld, stderr=subprocess.DEVNULL) as client:
        checked = CheckedClient(client)
        for method, params in SESSION:
            result = checked.call(method, params)
            called.add(method)
            if method == "initialize":
                announced = result["capabilities"]["methods"]
    # distilld/stop ends the daemon, so it gets a daemon of its own.
    with Client.start(distilld, stderr=subprocess.DEVNULL) as client:
        CheckedClient(client).call("distilld/stop", {})
        called.add("distilld/stop")
    missing = [m for m in announced if m not in called]
    assert not missing, f"announced but never answered and checked here: {missing}"
