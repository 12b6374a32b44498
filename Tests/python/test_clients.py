"""The two clients end to end: the bash client Clients/distill (private one-off daemons and the
shared daemon on a private XDG_RUNTIME_DIR) and the Python client Clients/python."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from conftest import ROOT, daemon_path, wait_for

DISTILL = os.path.join(ROOT, "Clients", "distill")
PAIRS = [{"id": "a", "full": "the old keeper climbed the stairs to light the great lamp at dusk", "simplified": "the keeper lit the lamp"},
         {"id": "b", "full": "the monkey ignored the nuts and reached for the long yellow fruit", "simplified": "the monkey reached for the fruit"}]


def env_for(runtime=None, private=True):
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(os.path.abspath(daemon_path())) + os.pathsep + env.get("PATH", "")
    env.pop("DISTILLD", None)  # the client finds `distilld` on PATH
    if private:
        env["DISTILL_PRIVATE"] = "1"
    else:
        env.pop("DISTILL_PRIVATE", None)
    if runtime:
        env["XDG_RUNTIME_DIR"] = runtime
    return env


def distill(*args, env=None, cwd=None, check=None):
    p = subprocess.run([DISTILL, *args], capture_output=True, text=True, env=env or env_for(), cwd=cwd, timeout=60)
    if check is not None:
        assert p.returncode == check, (p.returncode, p.stdout, p.stderr)
    return p


def ok(*args, **kw):
    p = distill(*args, check=0, **kw)
    assert p.stderr == "" or "error" not in p.stderr
    return json.loads(p.stdout)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("clientfiles")
    np.save(d / "teacher.npy", np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]], dtype=np.float32))
    np.save(d / "student.npy", np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]], dtype=np.float32))
    (d / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    (d / "inputs.txt").write_text("".join(p["full"] + "\n" for p in PAIRS))
    return d


@pytest.fixture(scope="module")
def shared(files):
    """A shared daemon on a private runtime directory, started by the first `distill` call."""
    runtime = tempfile.mkdtemp(prefix="distilld-rt-")
    os.chmod(runtime, 0o700)
    env = env_for(runtime, private=False)
    yield env
    distill("shutdown", env=env)
    sock = os.path.join(runtime, "distilld", "distilld.sock")
    wait_for(lambda: not os.path.exists(sock), timeout=5)
    shutil.rmtree(runtime, ignore_errors=True)


# ---------------------------------------------------------------- bash client, private daemons

def test_private_one_off_commands(files):
    assert ok("ping") == {"pong": True}
    status = ok("status")
    assert status["pid"] > 0
    assert ok("call", "distilld/ping", '{"payload": [1, "x"]}') == {"pong": True, "payload": [1, "x"]}
    info = ok("teacher", "load", "t", "teacher.npy", "--kind", "probs", cwd=files)
    assert info["name"] == "t" and info["examples"] == 2 and info["source"]["path"] == str(files / "teacher.npy")
    info = ok("teacher", "load", "demo", "builtin:demo")
    assert info["examples"] == 6 and info["vocab"] == 3
    info = ok("dataset", "load", "d", str(files / "pairs.jsonl"))
    assert info["count"] == 2
    # one-off daemons forget: nothing is loaded in the next invocation
    assert ok("teacher", "list") == {"teachers": []}
    assert ok("dataset", "list") == {"datasets": []}
    ok("--private", "ping", env=env_for(private=False))


def test_private_score_and_explain_from_files(files, tmp_path):
    r = ok("score", "--teacher-file", "teacher.npy", "--student", "A=student.npy", "--loss", "forward_kl",
           "--temperature", "2", cwd=files)
    assert r["students"][0]["name"] == "A" and r["loss"]["name"] == "forward_kl"
    svg = tmp_path / "svg"
    r = ok("explain", "--teacher-file", str(files / "teacher.npy"), "--student", f"A={files / 'student.npy'}",
           "--temperatures", "0.5,1,2", "--svg", str(svg))
    assert r["rows"] == 2
    assert [p["temperature"] for p in r["students"][0]["temperature"]["sweep"]] == [0.5, 1, 2]
    assert sorted(os.listdir(svg)) == ["contributions-A.svg", "temperature.svg"]
    assert sorted(r["chartFiles"]) == sorted(str(svg / n) for n in os.listdir(svg))
    for name in os.listdir(svg):
        ET.parse(svg / name)


def test_private_errors_and_usage(files):
    p = distill("teacher", "info", "nope", check=1)
    assert p.stdout == "" and "error 1001" in p.stderr and "nope" in p.stderr
    p = distill("teacher", "load", "t", str(files / "missing.npy"), check=1)
    assert p.stdout == "" and "error 1004" in p.stderr
    p = distill("call", "distilld/ping", "{bad", check=1)
    assert p.stdout == "" and p.stderr.startswith("distill:")
    p = distill("call", "no/such/method", "{}", check=1)
    assert "error -32601" in p.stderr
    p = distill("explain", "--teacher-file", str(files / "teacher.npy"), "--student", f"A={files / 'student.npy'}",
                "--temperatures", "1,0", check=1)
    assert "params.temperatures[1]" in p.stderr
    for args in (["bogus"], [], ["teacher"], ["teacher", "frob"], ["teacher", "load", "t"], ["dataset", "examples"],
                 ["dataset", "examples", "d", "--limit", "x"], ["explain", "--temperatures", "a,b"],
                 ["teacher", "examples", "t"], ["call"], ["score", "--frobnicate", "1"]):
        p = distill(*args, check=2)
        assert p.stdout == "" and "usage: distill" in p.stderr, args
    assert distill("--help", check=0).stdout.startswith("usage: distill")


# ---------------------------------------------------------------- bash client, shared daemon

def test_shared_daemon_keeps_names_between_invocations(shared, files):
    info = ok("teacher", "load", "t", str(files / "teacher.npy"), "--kind", "probs", env=shared)
    assert info["name"] == "t"
    listed = ok("teacher", "list", env=shared)
    assert [t["name"] for t in listed["teachers"]] == ["t"]
    assert ok("teacher", "info", "t", env=shared)["examples"] == 2
    p = distill("teacher", "load", "t", str(files / "teacher.npy"), env=shared, check=1)
    assert "error 1006" in p.stderr
    assert ok("teacher", "load", "t", str(files / "teacher.npy"), "--kind", "probs", "--replace", env=shared)["name"] == "t"
    ok("teacher", "load", "s", str(files / "student.npy"), "--kind", "probs", env=shared)
    r = ok("score", "--teacher", "t", "--student", "S=@s", env=shared)
    assert r["teacher"]["kind"] == "probs" and r["students"][0]["loss"] > 0
    r = ok("explain", "--teacher", "t", "--student", "S=@s", env=shared)
    assert r["rows"] == 2
    ok("teacher", "load", "demo", "builtin:demo", env=shared)
    ok("teacher", "load", "demoA", "builtin:demo-student-A", env=shared)
    r = ok("explain", "--teacher", "demo", "--student", "A=@demoA", "--example", "ex1", env=shared)
    assert r["example"] == "ex1" and r["students"][0]["contributions"][0]["label"] == "apple"
    assert r["students"][0]["direction"]["forwardKl"] == pytest.approx(0.7 * np.log(7 / 6) + 0.2 * np.log(2 / 3), abs=1e-6)
    ok("teacher", "unload", "demo", env=shared)
    ok("teacher", "unload", "demoA", env=shared)
    # datasets
    assert ok("dataset", "load", "d", str(files / "pairs.jsonl"), env=shared)["count"] == 2
    assert ok("dataset", "load", "inp", str(files / "inputs.txt"), "--kind", "inputs", env=shared)["kind"] == "inputs"
    assert sorted(d["name"] for d in ok("dataset", "list", env=shared)["datasets"]) == ["d", "inp"]
    assert ok("dataset", "info", "d", env=shared)["source"]["path"] == str(files / "pairs.jsonl")
    ex = ok("dataset", "examples", "d", "--offset", "1", "--limit", "1", env=shared)
    assert ex["total"] == 2 and [e["id"] for e in ex["examples"]] == ["b"]
    r = ok("diagnose", "--dataset", "d", "--inputs", "inp", env=shared)
    assert r["classification"]["regime"] == "mostly-full"
    r2 = ok("diagnose", "--dataset", "d", "--inputs-file", str(files / "inputs.txt"), env=shared)
    assert r2["classification"] == r["classification"]
    # the Python client on the same socket sees the same names
    from distilld import Client
    c = Client.connect(os.path.join(shared["XDG_RUNTIME_DIR"], "distilld", "distilld.sock"), autostart=False)
    try:
        assert {t["name"] for t in c.call("teacher/list")["teachers"]} == {"t", "s"}
    finally:
        c.close()
    # unload
    assert ok("dataset", "unload", "inp", env=shared) is not None
    assert ok("teacher", "unload", "s", env=shared) is not None
    assert [t["name"] for t in ok("teacher", "list", env=shared)["teachers"]] == ["t"]
    assert distill("teacher", "info", "s", env=shared, check=1).stderr.startswith("distill: error 1001")


def test_shared_daemon_load_list_shutdown(tmp_runtime, files):
    """`distill teacher load` and a second `distill teacher list` see one daemon; `distill shutdown` stops it."""
    env = env_for(tmp_runtime, private=False)
    ok("teacher", "load", "t", "builtin:demo", env=env)
    assert [t["name"] for t in ok("teacher", "list", env=env)["teachers"]] == ["t"]
    sock = os.path.join(tmp_runtime, "distilld", "distilld.sock")
    assert os.path.exists(sock)
    assert ok("shutdown", env=env) == {"stopping": True}
    assert wait_for(lambda: not os.path.exists(sock), timeout=10)
    # a new invocation starts a fresh daemon with nothing loaded
    assert ok("teacher", "list", env=env) == {"teachers": []}
    ok("shutdown", env=env)


# ---------------------------------------------------------------- the Python client

@pytest.fixture
def py():
    from distilld import Client
    c = Client.start(daemon_path(), stderr=subprocess.DEVNULL)
    yield c
    c.close()


def test_python_client_numpy_arrays_go_binary_and_match_lists(py):
    import distilld
    rng = np.random.default_rng(0)
    t = rng.normal(size=(4, 3, 7)).astype(np.float32)
    s = rng.normal(size=(4, 3, 7)).astype(np.float32)
    sent = []
    orig = py._send
    py._send = lambda m: (sent.append(m), orig(m))[1]
    try:
        a = py.call("distill/score", {"teacher": {"logits": t}, "students": {"s": {"logits": s}}, "loss": {"name": "forward_kl"}})
    finally:
        py._send = orig
    logits = sent[0]["params"]["teacher"]["logits"]
    assert logits["dtype"] == "float32" and logits["shape"] == [4, 3, 7]
    assert np.array_equal(distilld.decode_array(logits), t)
    b = py.call("distill/score", {"teacher": {"logits": t.tolist()}, "students": {"s": {"logits": s.tolist()}},
                                  "loss": {"name": "forward_kl"}})
    assert a["students"][0]["loss"] == b["students"][0]["loss"]
    assert a["students"][0]["perExample"] == b["students"][0]["perExample"]
    # float64 arrays travel as float64
    assert distilld.encode_array(t.astype(np.float64))["dtype"] == "float64"
    c = py.call("distill/score", {"teacher": {"logits": t.astype(np.float64)}, "students": {"s": {"logits": s.astype(np.float64)}},
                                  "loss": {"name": "forward_kl"}})
    assert c["students"][0]["loss"] == pytest.approx(b["students"][0]["loss"], rel=1e-6)


def test_python_client_errors_cancel_and_progress(py):
    from distilld import RPCError
    with pytest.raises(RPCError) as e:
        py.call("distill/explain", {"teacher": {"probs": [[0.5, 0.5]]}, "students": {"A": {"probs": [[0.5, 0.5]]}}, "temperature": 0})
    assert e.value.code == -32602 and e.value.data["field"] == "params.temperature"
    assert "params.temperature" in e.value.message and str(e.value).startswith("-32602: ")
    with pytest.raises(RPCError) as e:
        py.call("teacher/info", name="nope")
    assert e.value.code == 1001 and "nope" in e.value.message
    with pytest.raises(TypeError):
        py.call_async("distilld/ping", {"a": 1}, payload=2)
    # a long request: progress notifications reach the callback; cancel ends it with -32800
    big = np.random.default_rng(1).normal(size=(64, 16, 1024)).astype(np.float32)
    seen = []
    fut = py.call_async("distill/score", {"teacher": {"logits": big}, "students": {"a": {"logits": big[::-1].copy()},
                                                                                  "b": {"logits": big * 0.5}},
                                          "loss": {"name": "jsd"}}, progress=seen.append)
    wait_for(lambda: seen or fut.done(), timeout=20)
    py.cancel(fut)
    try:
        fut.result(30)
        cancelled = False
    except RPCError as err:
        assert err.code == -32800
        cancelled = True
    # the callback's last value is the one end (the client's own when the daemon sent no progress)
    assert seen[-1] == {"kind": "end", "message": "cancelled" if cancelled else "done"}
    assert [v["kind"] for v in seen].count("end") == 1
    if len(seen) > 1:
        assert seen[0]["kind"] == "begin" and seen[0]["cancellable"] is True
    assert cancelled or fut.done()
    # the session goes on
    assert py.call("distilld/ping", payload="after") == {"pong": True, "payload": "after"}


def test_python_client_context_manager_and_connect(tmp_runtime):
    from distilld import Client, default_socket_path
    with Client.start(daemon_path(), stderr=subprocess.DEVNULL) as c:
        assert c.call("distilld/ping") == {"pong": True}
    assert c._process.returncode == 0
    assert c.close() == 0  # idempotent
    assert default_socket_path() == os.path.join(tmp_runtime, "distilld", "distilld.sock")
    # no daemon yet: autostart=False fails, autostart starts one through `distilld connect`
    with pytest.raises(OSError):
        Client.connect(autostart=False)
    a = Client.connect(binary=daemon_path())
    try:
        a.call("teacher/load", {"name": "t", "path": "builtin:demo"})
        assert wait_for(lambda: os.path.exists(default_socket_path()), timeout=10)
        b = Client.connect(autostart=False)
        try:
            assert [t["name"] for t in b.call("teacher/list")["teachers"]] == ["t"]
            assert b._socket is not None
        finally:
            b.close()
        assert a.call("distilld/stop") == {"stopping": True}
    finally:
        a.close()
    assert wait_for(lambda: not os.path.exists(default_socket_path()), timeout=10)


def test_pip_install_of_the_python_client(tmp_path):
    target = tmp_path / "site"
    p = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                        "--target", str(target), os.path.join(ROOT, "Clients", "python")],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0 and "No module named pip" in p.stderr:
        pytest.skip("pip not available")
    assert p.returncode == 0, p.stderr
    code = ("import distilld, sys; print(distilld.__file__); "
            "c = distilld.Client.start(sys.argv[1]); print(c.call('distilld/ping', payload=3)); c.close()")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    r = subprocess.run([sys.executable, "-c", code, daemon_path()], capture_output=True, text=True, env=env,
                       cwd=str(tmp_path), timeout=60)
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.splitlines()[:2]
    assert first.startswith(str(target))
    assert second == "{'pong': True, 'payload': 3}"


def test_explain_example_index_from_the_shell(files):
    r = ok("explain", "--teacher-file", str(files / "teacher.npy"), "--student", f"A={files / 'student.npy'}", "--example", "1")
    assert r["example"] == "1"


def test_score_range_from_the_shell(files):
    t, a = str(files / "teacher.npy"), f"A={files / 'student.npy'}"
    whole = ok("score", "--teacher-file", t, "--student", a)
    part = ok("score", "--teacher-file", t, "--student", a, "--range", "1:1")
    assert part["range"] == {"start": 1, "count": 1, "of": whole["teacher"]["examples"]}
    assert part["students"][0]["perExample"] == whole["students"][0]["perExample"][1:2]
    tail = ok("score", "--teacher-file", t, "--student", a, "--range", "1")
    assert tail["students"][0]["perExample"] == whole["students"][0]["perExample"][1:]
    for bad in ("x", "1:", "-1", "1:2:3"):
        p = distill("score", "--teacher-file", t, "--student", a, "--range", bad, check=2)
        assert "--range takes START or START:COUNT" in p.stderr


def test_malformed_student_is_a_usage_error():
    p = distill("score", "--teacher", "t", "--student", "nope")
    assert p.returncode == 2


# ---------------------------------------------------------------- bash client, usage and set-up (issue #10)

# Every option that takes a value, per command line that accepts it.
VALUE_OPTIONS = {
    ("--socket",): [],
    ("teacher", "load", "t", "x.npy"): ["--format", "--kind", "--field"],
    ("dataset", "load", "d", "x.jsonl"): ["--format", "--kind", "--field"],
    ("dataset", "examples", "d"): ["--offset", "--limit"],
    ("sequence",): ["--teacher", "--student", "--labels"],
}
ANALYSIS_OPTIONS = ["--teacher", "--teacher-file", "--student", "--dataset", "--inputs", "--inputs-file", "--example",
                    "--loss", "--temperature", "--alpha", "--beta", "--reduction", "--convention", "--temperatures",
                    "--svg", "--range"]
for _command in ("score", "diagnose", "explain"):
    VALUE_OPTIONS[(_command,)] = ANALYSIS_OPTIONS


def _without_value_cases():
    for prefix, options in VALUE_OPTIONS.items():
        if not options:  # a global option: the prefix is the option itself
            yield list(prefix)
        for option in options:
            yield [*prefix, option]
            # the same option after a valid one, so the loop has moved on before it
            if prefix[0] in ("score", "diagnose", "explain"):
                yield [*prefix, "--loss", "forward_kl", option]


@pytest.mark.parametrize("args", list(_without_value_cases()), ids=" ".join)
def test_an_option_without_its_value_is_a_usage_error(args, tmp_path):
    """Before: `score --teacher` looped forever at full CPU and others died of 'unbound variable' (exit 1)."""
    try:
        p = subprocess.run([DISTILL, *args], capture_output=True, text=True, env=env_for(), cwd=tmp_path, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"distill {' '.join(args)} did not stop within 10 s")
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert p.stdout == "" and "usage: distill" in p.stderr
    assert f"{args[-1]} needs a value" in p.stderr, p.stderr
    assert "unbound variable" not in p.stderr


@pytest.mark.parametrize("args", [["score"], ["explain"], ["diagnose"], ["score", "--teacher", "t"],
                                  ["score", "--student", "A=a.npy"], ["explain", "--teacher-file", "t.npy"],
                                  ["diagnose", "--inputs", "i"], ["teacher", "load", "t", "x.npy", "--field", "full"]],
                         ids=" ".join)
def test_commands_missing_what_they_need_are_usage_errors(args):
    p = distill(*args, check=2)
    assert p.stdout == "" and "usage: distill" in p.stderr and "error" not in p.stderr


def _env_without_distilld(tmp_path):
    """PATH holds bash and coreutils but no distilld; DISTILLD unset."""
    env = env_for()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    env["PATH"] = str(bindir) + os.pathsep + "/usr/bin:/bin"
    assert shutil.which("distilld", path=env["PATH"]) is None
    return env


def test_without_distilld_on_path_the_shell_client_says_what_to_do(tmp_path):
    """Before: `line 69: distilld: command not found` and then 'no reply from distilld'."""
    client = tmp_path / "clients" / "distill"
    client.parent.mkdir()
    shutil.copy(DISTILL, client)
    env = _env_without_distilld(tmp_path)
    p = subprocess.run([str(client), "ping"], capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode == 1 and p.stdout == ""
    assert "command not found" not in p.stderr and "line " not in p.stderr
    assert "cannot find distilld" in p.stderr and "PATH" in p.stderr and "DISTILLD" in p.stderr
    # usage errors need no daemon and stay usage errors
    assert subprocess.run([str(client), "score"], capture_output=True, text=True, env=env, timeout=30).returncode == 2
    # DISTILLD naming something that is not an executable says so
    env["DISTILLD"] = str(tmp_path / "nowhere" / "distilld")
    p = subprocess.run([str(client), "ping"], capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode == 1 and "DISTILLD" in p.stderr and str(tmp_path / "nowhere" / "distilld") in p.stderr
    assert "command not found" not in p.stderr
    # DISTILLD pointing at the daemon works without PATH
    env["DISTILLD"] = daemon_path()
    p = subprocess.run([str(client), "ping"], capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode == 0 and json.loads(p.stdout) == {"pong": True}, p.stderr


def test_the_shell_client_finds_distilld_next_to_itself(tmp_path):
    bindir = tmp_path / "install"
    bindir.mkdir()
    shutil.copy(DISTILL, bindir / "distill")
    os.symlink(daemon_path(), bindir / "distilld")
    env = _env_without_distilld(tmp_path)
    p = subprocess.run([str(bindir / "distill"), "ping"], capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode == 0 and json.loads(p.stdout) == {"pong": True}, p.stderr
    # also through a symbolic link to the client placed elsewhere
    os.symlink(bindir / "distill", tmp_path / "bin" / "distill")
    p = subprocess.run(["distill", "ping"], capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode == 0 and json.loads(p.stdout) == {"pong": True}, p.stderr


def test_name_exists_hint_names_the_shell_option(shared, files):
    """The daemon's hint is `replace: true` (a JSON param); at the shell it is `--replace`."""
    ok("teacher", "load", "hint", "builtin:demo", env=shared)
    try:
        p = distill("teacher", "load", "hint", "builtin:demo", env=shared, check=1)
        assert "error 1006" in p.stderr and "--replace" in p.stderr and "replace: true" not in p.stderr
        ok("dataset", "load", "hintd", str(files / "pairs.jsonl"), env=shared)
        p = distill("dataset", "load", "hintd", str(files / "pairs.jsonl"), env=shared, check=1)
        assert "error 1006" in p.stderr and "--replace" in p.stderr and "replace: true" not in p.stderr
        # a raw `call` keeps the daemon's wording: there the param is what to pass
        p = distill("call", "teacher/load", '{"name":"hint","path":"builtin:demo"}', env=shared, check=1)
        assert "replace: true" in p.stderr
    finally:
        distill("teacher", "unload", "hint", env=shared)
        distill("dataset", "unload", "hintd", env=shared)


# ---------------------------------------------------------------- progress (issue #10)

def test_progress_begin_is_not_followed_by_a_report_of_zero(raw, tmp_path):
    """Before: a dataset load sent `begin` (percentage 0) and then a redundant `report` with percentage 0."""
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    d = raw("--progress-after", "0")
    big = np.random.default_rng(4).normal(size=(16, 2048)).tolist()
    requests = [("dataset/load", {"name": "d", "path": str(path)}),
                ("distill/score", {"teacher": {"logits": big}, "students": {"a": {"logits": big[::-1]}},
                                   "loss": {"name": "forward_kl"}})]
    for k, (method, params) in enumerate(requests, 1):
        d.send_line({"jsonrpc": "2.0", "id": k, "method": method, "params": {**params, "workDoneToken": k}})
        values = []
        while True:
            m = d.read_line()
            if m.get("method") == "$/progress":
                assert m["params"]["token"] == k
                values.append(m["params"]["value"])
            elif m.get("id") == k:
                assert "result" in m, m
                break
        assert values[0]["kind"] == "begin" and values[-1]["kind"] == "end", values
        percents = [v["percentage"] for v in values[:-1]]
        assert percents == sorted(set(percents)), (method, values)  # strictly rising from begin's 0
    # what the first report would have said travels in the begin
    d.send_line({"jsonrpc": "2.0", "id": 9, "method": "dataset/load",
                 "params": {"name": "e", "path": str(path), "workDoneToken": "m"}})
    begin = d.read_line()
    assert begin["params"]["value"] == {"kind": "begin", "title": "dataset/load", "cancellable": True, "percentage": 0,
                                        "message": "reading"}
    d.close()


# ---------------------------------------------------------------- the Python client (issue #10)

SMALL_SCORE = {"teacher": {"probs": [[0.7, 0.2, 0.1]]}, "students": {"A": {"probs": [[0.6, 0.3, 0.1]]}},
               "loss": {"name": "forward_kl"}}


def test_python_client_progress_callback_sees_an_end_for_a_quick_request(py):
    """Before: a request under --progress-after never called the callback, so README's example printed nothing."""
    seen = []
    r = py.call("distill/score", SMALL_SCORE, progress=seen.append)
    assert r["best"] == "A"
    assert seen == [{"kind": "end", "message": "done"}]
    # a failed request ends with "failed", like the daemon's own end
    from distilld import RPCError
    seen.clear()
    with pytest.raises(RPCError):
        py.call("distill/score", {**SMALL_SCORE, "loss": {"name": "no_such_loss"}}, progress=seen.append)
    assert seen == [{"kind": "end", "message": "failed"}]
    # the callback is forgotten once its request is answered
    assert py._progress == {}


def test_python_client_readme_progress_example_prints(py, capsys):
    """README's notebook example, with inline arrays in place of its files."""
    rng = np.random.default_rng(2)
    r = py.call("distill/score", teacher={"logits": rng.normal(size=(4, 8)).astype(np.float32)},
                students={"s2": {"logits": rng.normal(size=(4, 8)).astype(np.float32)}},
                loss={"name": "forward_kl", "temperature": 2.0, "scaleBySquaredTemperature": True},
                conventions=["pytorch_kldiv_batchmean", "hinton"],
                progress=lambda v: print(v["kind"], v.get("percentage", "")))
    assert r["best"] == "s2"
    assert capsys.readouterr().out.split() == ["end"]  # quicker than --progress-after: the client's own end


def test_python_client_progress_with_the_daemon_reporting():
    """--progress-after 0: the callback sees begin, rising reports and one end, and the delivered
    notifications are not kept in `notifications`."""
    from distilld import Client
    big = np.random.default_rng(3).normal(size=(32, 4096)).astype(np.float32)
    with Client.start(daemon_path(), args=["--progress-after", "0"], stderr=subprocess.DEVNULL) as c:
        seen = []
        c.call("distill/score", {"teacher": {"logits": big}, "students": {"a": {"logits": big[::-1].copy()}},
                                 "loss": {"name": "jsd"}}, progress=seen.append)
        kinds = [v["kind"] for v in seen]
        assert kinds[0] == "begin" and kinds[-1] == "end" and kinds.count("end") == 1, kinds
        assert set(kinds[1:-1]) <= {"report"}
        assert not any(m["method"] == "$/progress" for m in c.notifications)


def test_python_client_keeps_a_bounded_number_of_notifications():
    """Before: `notifications` was a list that grew for as long as the client lived."""
    from distilld import Client
    with Client.start(daemon_path(), stderr=subprocess.DEVNULL) as c:
        limit = c.notifications.maxlen
        assert limit is not None and limit >= 100
        for k in range(limit + 50):
            c._dispatch({"jsonrpc": "2.0", "method": "window/logMessage", "params": {"type": 4, "message": str(k)}})
        assert len(c.notifications) == limit
        assert c.notifications[-1]["params"]["message"] == str(limit + 49)
        assert c.notifications[0]["params"]["message"] == "50"
    with Client.start(daemon_path(), stderr=subprocess.DEVNULL, keep_notifications=3) as c:
        assert c.notifications.maxlen == 3


def test_importing_the_python_client_does_not_import_torch():
    code = "import sys; sys.path.insert(0, sys.argv[1]); import distilld; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code, os.path.join(ROOT, "Clients", "python")], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr


def _bf16_to_float32(bits):
    return (np.asarray(bits).astype(np.uint16).astype(np.uint32) << 16).view(np.float32)


def test_python_client_accepts_torch_tensors(py):
    torch = pytest.importorskip("torch")
    import distilld
    g = torch.Generator().manual_seed(0)
    t = torch.randn(3, 5, 11, generator=g, requires_grad=True)
    s = torch.randn(3, 5, 11, generator=g)
    enc = distilld.encode_array(t)
    assert enc["dtype"] == "float32" and enc["shape"] == [3, 5, 11]
    assert np.array_equal(distilld.decode_array(enc), t.detach().numpy())
    a = py.call("distill/score", teacher={"logits": t}, students={"s": {"logits": s}}, loss={"name": "forward_kl"})
    b = py.call("distill/score", teacher={"logits": t.detach().numpy()}, students={"s": {"logits": s.numpy()}},
                loss={"name": "forward_kl"})
    assert a["students"][0]["loss"] == b["students"][0]["loss"]
    # other dtypes travel as numpy would send them; a non-contiguous view is fine
    assert distilld.encode_array(t.detach().double())["dtype"] == "float64"
    assert distilld.encode_array(torch.arange(6).reshape(2, 3).t())["dtype"] == "int64"
    assert distilld.decode_array(distilld.encode_array(torch.arange(6).reshape(2, 3).t())).tolist() == [[0, 3], [1, 4], [2, 5]]


def test_python_client_sends_torch_bfloat16_as_bfloat16(py):
    torch = pytest.importorskip("torch")
    import distilld
    g = torch.Generator().manual_seed(1)
    t = torch.randn(2, 4, 9, generator=g).to(torch.bfloat16)
    s = torch.randn(2, 4, 9, generator=g).to(torch.bfloat16).requires_grad_()
    enc = distilld.encode_array(t)
    assert enc["dtype"] == "bfloat16" and enc["shape"] == [2, 4, 9]
    bits = np.frombuffer(__import__("base64").b64decode(enc["data"]), "<u2")
    assert np.array_equal(_bf16_to_float32(bits).reshape(2, 4, 9), t.float().numpy())
    assert np.array_equal(distilld.decode_array(enc), t.float().numpy())  # decoded exactly, as float32
    a = py.call("distill/score", teacher={"logits": t}, students={"s": {"logits": s}}, loss={"name": "forward_kl"})
    b = py.call("distill/score", teacher={"logits": t.float().numpy()}, students={"s": {"logits": s.detach().float().numpy()}},
                loss={"name": "forward_kl"})
    assert a["students"][0]["loss"] == pytest.approx(b["students"][0]["loss"], rel=1e-6)


def test_python_client_sends_ml_dtypes_bfloat16_as_bfloat16():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    import distilld
    x = np.array([[1.5, -2.0, 3.140625]], dtype=ml_dtypes.bfloat16)
    enc = distilld.encode_array(x)
    assert enc["dtype"] == "bfloat16" and enc["shape"] == [1, 3]
    assert distilld.decode_array(enc).tolist() == [[1.5, -2.0, 3.140625]]


def test_python_client_bfloat16_without_ml_dtypes_decodes_exactly():
    """A bfloat16 binary array (as the daemon could send one) decodes to float32 without extra packages."""
    import base64
    import distilld
    bits = np.array([0x3FC0, 0xC000, 0x4049, 0xFF80], "<u2")  # 1.5, -2, 3.140625, -inf
    value = {"dtype": "bfloat16", "shape": [2, 2], "data": base64.b64encode(bits.tobytes()).decode()}
    out = distilld.decode_array(value)
    assert out.dtype == np.float32 and out.tolist() == [[1.5, -2.0], [3.140625, float("-inf")]]


def test_python_client_without_distilld_says_what_to_do(tmp_runtime, monkeypatch, tmp_path):
    """Before: Client.connect() raised a bare FileNotFoundError for 'distilld'."""
    from distilld import Client
    monkeypatch.delenv("DISTILLD", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    for start in (Client.connect, Client.start):
        with pytest.raises(FileNotFoundError) as e:
            start()
        message = str(e.value)
        assert "distilld" in message and "PATH" in message and "DISTILLD" in message
    monkeypatch.setenv("DISTILLD", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError) as e:
        Client.connect()
    assert "DISTILLD" in str(e.value) and str(tmp_path / "missing") in str(e.value)


def test_python_client_survives_a_raising_callback(py, capsys):
    """A callback that raises (here at the client-made end) is reported; the call and the connection go on."""
    def boom(value):
        raise ValueError("callback bug")
    assert py.call("distill/score", SMALL_SCORE, progress=boom)["best"] == "A"
    assert "callback bug" in capsys.readouterr().err
    assert py.call("distilld/ping") == {"pong": True}


def test_demo_without_distilld_says_what_to_do(tmp_path):
    """Before: `distilld: command not found`, then a wait for a socket that never came."""
    env = _env_without_distilld(tmp_path)
    env.pop("DISTILLD", None)
    p = subprocess.run(["bash", os.path.join(ROOT, "Clients", "demo.sh")], capture_output=True, text=True, env=env,
                       timeout=60)
    assert p.returncode == 1 and "cannot find distilld" in p.stderr and "command not found" not in p.stderr


def test_demo_runs_end_to_end_with_the_real_model(distilld):
    """`make demo` as a user sees it: the builtins, then SmolLM2 (teacher-forced scoring, the
    behavioural context gap, a per-token chart, an export and its audit); every step must run and
    print what it says."""
    model = os.environ.get("DISTILLD_SMOLLM2_GGUF") or os.path.join(ROOT, ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    if not os.path.exists(model):
        pytest.fail(f"{model} not found; run `make models`")
    env = dict(os.environ, DISTILLD=distilld, DISTILL_DEMO_MODEL=model)
    p = subprocess.run(["bash", os.path.join(ROOT, "Clients", "demo.sh")], capture_output=True, text=True, env=env,
                       timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    out = p.stdout
    for words in ["best: A", "smol: llama, 30 layers", "nats per target token over 10 target tokens", "context gap",
                  "tokens-italy.svg", "targets.safetensors", "smallest k within 0.01 nats", "Demo finished."]:
        assert words in out, words


# ---------------------------------------------------------------- model/* in both clients (issue #12)

NGRAM = os.path.join(ROOT, "Tests", "python", "fixtures", "ngram")
SMOLLM2 = os.environ.get("DISTILLD_SMOLLM2_GGUF") or os.path.join(ROOT, ".cache", "models",
                                                                   "SmolLM2-135M-Instruct.Q4_1.gguf")
LN10 = np.log(10.0)


@pytest.fixture
def echo_daemon(tmp_path):
    """A stand-in daemon that answers each request with its own method and params, so the
    clients' request building is checked without the real daemon."""
    script = tmp_path / "echo-distilld"
    script.write_text(f"#!{sys.executable}\n" + (
        "import json, sys\n"
        "for line in sys.stdin:\n"
        "    m = json.loads(line)\n"
        "    if 'id' in m:\n"
        "        r = {'method': m['method'], 'params': m.get('params')}\n"
        "        print(json.dumps({'jsonrpc': '2.0', 'id': m['id'], 'result': r}, separators=(',', ':')), flush=True)\n"))
    script.chmod(0o755)
    return str(script)


def sent_by_shell(echo_daemon, *args, cwd=None):
    env = env_for()
    env["DISTILLD"] = echo_daemon
    return ok(*args, env=env, cwd=cwd)


def test_shell_model_commands_build_their_requests(echo_daemon, tmp_path):
    def sent(*args):
        return sent_by_shell(echo_daemon, *args, cwd=tmp_path)
    assert sent("model", "load", "lm", "m.gguf", "--format", "gguf", "--tokenizer", "tok.json", "--replace") == {
        "method": "model/load", "params": {"name": "lm", "path": str(tmp_path / "m.gguf"), "format": "gguf",
                                           "replace": True, "options": {"tokenizer": str(tmp_path / "tok.json")}}}
    assert sent("model", "load", "lm", "/abs/dir")["params"] == {"name": "lm", "path": "/abs/dir"}
    assert sent("model", "build", "ng", "--dataset", "d", "--order", "4", "--text", "full") == {
        "method": "model/load", "params": {"name": "ng", "build": {"dataset": "d", "order": 4, "text": "full"}}}
    assert sent("model", "build", "ng", "--replace", "--dataset", "d")["params"] == {
        "name": "ng", "build": {"dataset": "d"}, "replace": True}
    assert sent("model", "list") == {"method": "model/list", "params": {}}
    assert sent("model", "info", "lm") == {"method": "model/info", "params": {"name": "lm"}}
    assert sent("model", "unload", "lm") == {"method": "model/unload", "params": {"name": "lm"}}
    text = 'tab\there "quoted" back\\slash\nnew line \x01 héllo 世界 🙂'
    assert sent("model", "tokenize", "lm", text) == {"method": "model/tokenize", "params": {"model": "lm", "text": text}}
    assert sent("model", "tokenize", "lm", "--no-special")["params"] == {"model": "lm", "text": "--no-special"}
    assert sent("model", "tokenize", "lm", "x", "--no-special")["params"] == {"model": "lm", "text": "x",
                                                                           "addSpecial": False}
    assert sent("model", "detokenize", "lm", "1,22,333") == {"method": "model/detokenize",
                                                             "params": {"model": "lm", "tokens": [1, 22, 333]}}
    assert sent("model", "detokenize", "lm", "7", "--skip-special")["params"] == {"model": "lm", "tokens": [7],
                                                                               "skipSpecial": True}
    assert sent("model", "logprobs", "lm", "a b", text, "--topk", "5", "--no-special", "--", "-x", "--topk") == {
        "method": "model/logprobs",
        "params": {"model": "lm", "texts": ["a b", text, "-x", "--topk"], "topk": 5, "addSpecial": False}}
    assert sent("model", "generate", "lm", "Once upon", "--max-tokens", "8", "--temperature", "0.7", "--top-k", "5",
                "--top-p", "0.9", "--seed", "3", "-n", "2", "--stop", ".", "--stop", "\n", "--no-special") == {
        "method": "model/generate",
        "params": {"model": "lm", "prompt": "Once upon", "maxTokens": 8, "temperature": 0.7, "topK": 5, "topP": 0.9,
                   "seed": 3, "n": 2, "addSpecial": False, "stop": [".", "\n"]}}
    assert sent("model", "generate", "lm", "")["params"] == {"model": "lm", "prompt": ""}


@pytest.mark.parametrize("args", [
    ["model"], ["model", "frob"], ["model", "load", "lm"], ["model", "load", "lm", "x.gguf", "--kind", "probs"],
    ["model", "build", "ng"], ["model", "build", "ng", "--order", "2"], ["model", "build", "ng", "--dataset", "d", "--order", "x"],
    ["model", "info"], ["model", "unload"], ["model", "tokenize", "lm"], ["model", "tokenize", "lm", "x", "--topk", "1"],
    ["model", "detokenize", "lm"], ["model", "detokenize", "lm", "1,x"], ["model", "detokenize", "lm", "1.5"],
    ["model", "detokenize", "lm", ","], ["model", "logprobs", "lm"], ["model", "logprobs", "lm", "--topk", "2"],
    ["model", "logprobs", "lm", "a", "--topk", "x"], ["model", "logprobs", "lm", "a", "--bogus"],
    ["model", "generate", "lm"], ["model", "generate", "lm", "p", "-n", "1.5"],
    ["model", "generate", "lm", "p", "--temperature", "hot"], ["model", "generate", "lm", "p", "--top-p", "1,0"],
    ["model", "generate", "lm", "p", "--max-tokens", "-"], ["model", "generate", "lm", "p", "--frobnicate"]],
    ids=" ".join)
def test_shell_model_usage_errors(args, echo_daemon):
    """Usage errors exit 2 with the usage text and never reach the daemon (here one that would answer)."""
    env = env_for()
    env["DISTILLD"] = echo_daemon
    p = distill(*args, env=env, check=2)
    assert p.stdout == "" and "usage: distill" in p.stderr and "error" not in p.stderr
    assert "model load NAME PATH" in p.stderr and "model generate NAME PROMPT" in p.stderr


MODEL_VALUE_OPTIONS = {
    ("model", "load", "lm", "x.gguf"): ["--format", "--tokenizer"],
    ("model", "build", "ng"): ["--dataset", "--order", "--text"],
    ("model", "logprobs", "lm", "text"): ["--topk"],
    ("model", "generate", "lm", "p"): ["--max-tokens", "--temperature", "--top-k", "--top-p", "--seed", "-n", "--stop"],
}


@pytest.mark.parametrize("args", [[*prefix, o] for prefix, options in MODEL_VALUE_OPTIONS.items() for o in options],
                         ids=" ".join)
def test_a_model_option_without_its_value_is_a_usage_error(args, tmp_path):
    p = subprocess.run([DISTILL, *args], capture_output=True, text=True, env=env_for(), cwd=tmp_path, timeout=10)
    assert p.returncode == 2 and p.stdout == "" and f"{args[-1]} needs a value" in p.stderr, p.stderr
    assert "unbound variable" not in p.stderr


def test_python_model_helpers_build_their_requests(echo_daemon, tmp_path, monkeypatch):
    from distilld import Client
    monkeypatch.chdir(tmp_path)
    with Client.start(echo_daemon) as c:
        assert c.load_model("lm", "m.gguf", format="gguf", tokenizer="tok.json", replace=True) == {
            "method": "model/load", "params": {"name": "lm", "path": str(tmp_path / "m.gguf"), "format": "gguf",
                                               "options": {"tokenizer": str(tmp_path / "tok.json")}, "replace": True}}
        assert c.load_model("ng", build={"dataset": "d", "order": 2})["params"] == {
            "name": "ng", "build": {"dataset": "d", "order": 2}}
        assert c.tokenize("lm", "hi") == {"method": "model/tokenize", "params": {"model": "lm", "text": "hi"}}
        assert c.tokenize("lm", "hi", add_special=False)["params"]["addSpecial"] is False
        # ids go as JSON lists, not as the binary array form numpy arrays take elsewhere
        assert c.logprobs("lm", tokens=np.array([[1, 2], [3, 4]], dtype=np.int64), topk=3, full=True)["params"] == {
            "model": "lm", "tokens": [[1, 2], [3, 4]], "topk": 3, "full": True}
        assert c.logprobs("lm", "one")["params"] == {"model": "lm", "text": "one"}
        assert c.logprobs("lm", ("a", "b"), add_special=False)["params"] == {"model": "lm", "texts": ["a", "b"],
                                                                             "addSpecial": False}
        assert c.generate("lm", "p", max_tokens=4, temperature=0, top_k=2, top_p=0.5, seed=np.int64(9), n=2,
                          stop=".")["params"] == {"model": "lm", "prompt": "p", "maxTokens": 4, "temperature": 0,
                                                  "topK": 2, "topP": 0.5, "seed": 9, "n": 2, "stop": ["."]}
        assert c.generate("lm", tokens=np.arange(3))["params"] == {"model": "lm", "tokens": [0, 1, 2]}
        with pytest.raises(TypeError):
            c.logprobs("lm")
        with pytest.raises(TypeError):
            c.logprobs("lm", "a", tokens=[1])
        with pytest.raises(TypeError):
            c.generate("lm")


def test_python_logprobs_decodes_full_into_an_array():
    """`full` comes back as a numpy array, decoded by the client's own decode_array."""
    import distilld
    from distilld import Client
    full = np.log(np.random.default_rng(5).dirichlet(np.ones(6), size=3)).astype(np.float32)
    reply = {"model": "lm", "sequences": [{"tokens": [1, 2, 3], "full": distilld.encode_array(full)}, {"tokens": [4]}]}
    c = Client.__new__(Client)
    c.call = lambda method, params, timeout=None: json.loads(json.dumps(reply))
    got = Client.logprobs(c, "lm", ["x", "y"], full=True)
    assert np.array_equal(got["sequences"][0]["full"], full) and "full" not in got["sequences"][1]


# The daemon end to end: an n-gram model against kenlm, at the shell.

def arpa_words(path):
    """The vocabulary of an ARPA file: its unigrams, in file order."""
    from ngram_reference import read_arpa
    return [w for (w,) in read_arpa(path)[1]]


def kenlm_scores(model, words, context):
    """log10 p(w | <s> context) for every w of `words` by kenlm (<s> is never predicted)."""
    import kenlm
    state, out = kenlm.State(), kenlm.State()
    model.BeginSentenceWrite(state)
    for w in context:
        model.BaseScore(state, w, out)
        state, out = out, state
    return np.array([-np.inf if w == "<s>" else model.BaseScore(state, w, out) for w in words])


def entropy_nats(log10p):
    p = 10.0 ** log10p
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def test_shell_ngram_model_against_kenlm(shared):
    kenlm = pytest.importorskip("kenlm")
    arpa = os.path.join(NGRAM, "kn3.arpa")
    words = arpa_words(arpa)
    reference = kenlm.Model(arpa)
    info = ok("model", "load", "kn3", arpa, env=shared)
    try:
        assert info["type"] == "model" and info["name"] == "kn3"
        assert (info["kind"], info["architecture"], info["order"], info["vocab"]) == ("ngram", "ngram", 3, len(words))
        assert info["layers"] is None and info["contextLength"] is None
        assert (info["source"]["path"], info["source"]["format"]) == (arpa, "arpa")
        assert "kn3" in [m["name"] for m in ok("model", "list", env=shared)["models"]]
        assert ok("model", "info", "kn3", env=shared)["vocab"] == len(words)
        # the tokenizer is the ARPA vocabulary, one id per word
        every = ok("model", "tokenize", "kn3", " ".join(words), "--no-special", env=shared)
        assert every["pieces"] == words and sorted(every["tokens"]) == list(range(len(words)))
        ids = dict(zip(words, every["tokens"]))
        word_of = {i: w for w, i in ids.items()}
        assert ok("model", "detokenize", "kn3", ",".join(map(str, every["tokens"][3:9])), env=shared)["text"].split() \
            == words[3:9]
        # scores, entropies and top-3 of every position, several sentences in one batch
        sentences = [s for s in open(os.path.join(NGRAM, "sentences.txt")).read().splitlines() if s][:6]
        sentences.append("it small zebra sat")  # an unknown word
        r = ok("model", "logprobs", "kn3", *sentences, "--topk", "3", env=shared)
        assert r["model"] == "kn3" and len(r["sequences"]) == len(sentences)
        for s, seq in zip(sentences, r["sequences"]):
            ws = s.split()
            assert seq["pieces"] == ["<s>", *ws, "</s>"]  # an unknown word keeps its spelling, as in model/tokenize
            assert seq["tokens"] == [ids["<s>"], *(ids.get(w, ids["<unk>"]) for w in ws), ids["</s>"]]
            want = [p * LN10 for p, _, _ in reference.full_scores(s)]
            assert seq["logprobs"][-1] is None
            assert seq["logprobs"][:-1] == pytest.approx(want, abs=3e-4), s
            assert seq["sum"] == pytest.approx(reference.score(s) * LN10, abs=1e-3), s
            for t in range(len(ws) + 1):  # the distributions after <s> w1..wt
                dist = kenlm_scores(reference, words, ws[:t])
                assert seq["entropy"][t] == pytest.approx(entropy_nats(dist), abs=1e-4), (s, t)
                top = seq["top"][t]
                assert top["pieces"] == [word_of[i] for i in top["ids"]]
                assert top["logprobs"] == sorted(top["logprobs"], reverse=True)
                assert top["logprobs"] == pytest.approx(sorted(dist * LN10, reverse=True)[:3], abs=3e-4), (s, t)
                assert top["logprobs"] == pytest.approx([dist[words.index(w)] * LN10 for w in top["pieces"]], abs=3e-4)
        # greedy generation: kenlm's argmax at each step, the lowest id on ties, until </s>
        g = ok("model", "generate", "kn3", "it small", "--temperature", "0", "--max-tokens", "8", env=shared)
        assert g["promptTokens"] == [ids["<s>"], ids["it"], ids["small"]]
        context, expected, logprob = ["it", "small"], [], 0.0
        for _ in range(8):
            dist = kenlm_scores(reference, words, context)
            best = min((i for i in range(len(words)) if dist[words.index(word_of[i])] == dist.max()))
            expected.append(best)
            logprob += dist.max() * LN10
            if word_of[best] == "</s>":
                break
            context.append(word_of[best])
        (c,) = g["completions"]
        assert c["tokens"] == expected
        assert c["finishReason"] == ("eos" if word_of[expected[-1]] == "</s>" else "length")
        assert c["logprob"] == pytest.approx(logprob, abs=1e-3)
        assert [w for w in c["text"].split() if w != "</s>"] == [word_of[i] for i in expected if word_of[i] != "</s>"]
        # a stop string ends the text before it
        stop = c["text"].split()[1]
        s = ok("model", "generate", "kn3", "it small", "--temperature", "0", "--max-tokens", "8", "--stop", stop,
               env=shared)["completions"][0]
        assert s["finishReason"] == "stop" and s["text"] == c["text"][:c["text"].index(stop)]
        # sampling: the same seed gives the same completions, completion i uses seed + i, and
        # each completion's logprob is the model's own (temperature 1) log-probability of it
        a = ok("model", "generate", "kn3", "the", "--seed", "5", "-n", "3", "--max-tokens", "6", env=shared)
        assert ok("model", "generate", "kn3", "the", "--seed", "5", "-n", "3", "--max-tokens", "6", env=shared) == a
        b = ok("model", "generate", "kn3", "the", "--seed", "6", "-n", "2", "--max-tokens", "6", env=shared)
        assert b["completions"] == a["completions"][1:]
        for c in a["completions"]:
            context, total = ["the"], 0.0
            for i in c["tokens"]:
                total += kenlm_scores(reference, words, context)[words.index(word_of[i])] * LN10
                context.append(word_of[i])
            assert c["logprob"] == pytest.approx(total, abs=1e-3)
    finally:
        distill("model", "unload", "kn3", env=shared)


def test_shell_ngram_built_from_a_dataset_against_the_reference(shared, tmp_path):
    """`model build`: interpolated modified Kneser–Ney on a dataset's texts, against the float64
    reference in ngram_reference.py, from either side of the pairs."""
    from ngram_reference import KneserNey
    lines = [l for l in open(os.path.join(NGRAM, "train.txt")).read().splitlines() if l.strip()]
    path = tmp_path / "train-pairs.jsonl"
    path.write_text("".join(json.dumps({"id": str(i), "full": l.upper(), "simplified": l}) + "\n"
                            for i, l in enumerate(lines)))
    ok("dataset", "load", "trainpairs", str(path), env=shared)
    try:
        # the full side is the same text in capitals: a different vocabulary, the same counts
        sentences = ["it small today old", "the bird sat on the mat", "zebra the", "IT SMALL TODAY OLD"]
        for side, texts, built in (("simplified", lines, ["--order", "3"]),
                                   ("full", [l.upper() for l in lines], ["--order", "2", "--text", "full"])):
            order = int(built[1])
            reference = KneserNey([t.split() for t in texts], order)
            info = ok("model", "build", f"kn-{side}", "--dataset", "trainpairs", *built, env=shared)
            assert (info["kind"], info["order"], info["source"]) == ("ngram", order, None)
            assert info["vocab"] == len(reference.vocabulary) + 1  # and <s>
            r = ok("model", "logprobs", f"kn-{side}", *sentences, env=shared)
            for s, seq in zip(sentences, r["sequences"]):
                ws = s.split() + ["</s>"]
                want = [np.log(reference.prob(w, tuple(["<s>"] + ws[:k]))) for k, w in enumerate(ws)]
                assert seq["logprobs"][:-1] == pytest.approx(want, abs=1e-5), (side, s)
                assert seq["sum"] == pytest.approx(reference.sentence_log10(s.split()) * LN10, abs=1e-5)
            distill("model", "unload", f"kn-{side}", env=shared)
    finally:
        distill("dataset", "unload", "trainpairs", env=shared)


def test_shell_model_errors(shared):
    arpa = os.path.join(NGRAM, "kn2.arpa")
    p = distill("model", "info", "nope", env=shared, check=1)
    assert p.stdout == "" and p.stderr.startswith("distill: error 1007") and "nope" in p.stderr
    ok("teacher", "load", "teach", "builtin:demo", env=shared)
    try:
        # a teacher's name is not a model's
        assert "error 1007" in distill("model", "tokenize", "teach", "a b", env=shared, check=1).stderr
        assert "error 1006" in distill("model", "load", "teach", arpa, env=shared, check=1).stderr
    finally:
        distill("teacher", "unload", "teach", env=shared)
    p = distill("model", "load", "m", "no-such-file.arpa", env=shared, check=1)
    assert "error 1004" in p.stderr and "no-such-file.arpa" in p.stderr
    ok("model", "load", "m", arpa, env=shared)
    try:
        p = distill("model", "load", "m", arpa, env=shared, check=1)
        assert "error 1006" in p.stderr and "--replace" in p.stderr and "replace: true" not in p.stderr
        assert ok("model", "load", "m", os.path.join(NGRAM, "kn4.arpa"), "--replace", env=shared)["order"] == 4
        p = distill("model", "detokenize", "m", "99999", env=shared, check=1)
        assert "error -32602" in p.stderr and "params.tokens" in p.stderr
        p = distill("model", "build", "m2", "--dataset", "no-such-dataset", env=shared, check=1)
        assert p.stderr.startswith("distill: error") and "no-such-dataset" in p.stderr
    finally:
        assert ok("model", "unload", "m", env=shared) == {"unloaded": "m"}
    assert "error 1007" in distill("model", "unload", "m", env=shared, check=1).stderr


# The daemon end to end: SmolLM2 (Q4_1 GGUF) against transformers on the same file.

SMOL_TEXTS = [
    "The capital of France is Paris, and the capital of Germany is",
    "def square(x):\n    return x * x  # café, naïve\n",
    "Ünïcödé, 東京タワー and 🙂: 12345 + 678 =    13023.\tTabs.",
]


@pytest.fixture(scope="module")
def smol_reference(smollm2_reference):
    """transformers' tokenizer and model on the same GGUF file, dequantised to float32
    (conftest.py: loaded once a session)."""
    return smollm2_reference


def reference_logprobs(model, tokens):
    import torch
    with torch.no_grad():
        return torch.log_softmax(model(torch.tensor([tokens])).logits[0].double(), -1).numpy()


def test_python_client_smollm2_against_transformers(py, smol_reference):
    import gguf
    tokenizer, model = smol_reference
    info = py.load_model("smol", SMOLLM2)
    meta = gguf.GGUFReader(SMOLLM2).fields
    assert (info["type"], info["kind"], info["architecture"]) == ("model", "transformer", "llama")
    assert info["layers"] == int(meta["llama.block_count"].contents())
    assert info["contextLength"] == int(meta["llama.context_length"].contents())
    assert info["vocab"] == len(meta["tokenizer.ggml.tokens"].contents()) == len(tokenizer)
    assert info["parameters"] == sum(p.numel() for p in model.parameters())  # a tied head counted once
    assert info["tokenizer"]["eos"] == tokenizer.eos_token_id and (info["source"]["path"], info["source"]["format"]) == (SMOLLM2, "gguf")
    assert info["sourceDtype"] == "Q4_1" and info["dtype"] == "float32"
    # tokens, with and without the special ones, and back
    for text in SMOL_TEXTS:
        got = py.tokenize("smol", text)
        assert got["tokens"] == tokenizer(text)["input_ids"], text
        assert got["pieces"] == tokenizer.convert_ids_to_tokens(got["tokens"])
        plain = py.tokenize("smol", text, add_special=False)["tokens"]
        assert plain == tokenizer(text, add_special_tokens=False)["input_ids"], text
        assert py.detokenize("smol", plain) == tokenizer.decode(plain), text
    assert py.detokenize("smol", np.array(plain)) == tokenizer.decode(plain)
    # scores: three texts in one batch, the whole distribution too
    r = py.logprobs("smol", SMOL_TEXTS, topk=5, full=True)
    for text, seq in zip(SMOL_TEXTS, r["sequences"]):
        want = reference_logprobs(model, seq["tokens"])
        assert seq["tokens"] == tokenizer(text)["input_ids"]
        full = seq["full"]
        assert isinstance(full, np.ndarray) and full.shape == want.shape and full.dtype == np.float32
        likely = np.exp(want) > 1e-6
        assert np.abs(full - want)[likely].max() <= 1e-3, text
        assert (full.argmax(-1) == want.argmax(-1)).all(), text
        picked = want[np.arange(len(seq["tokens"]) - 1), seq["tokens"][1:]]
        assert seq["logprobs"][-1] is None
        assert seq["logprobs"][:-1] == pytest.approx(picked, abs=1e-3)
        assert seq["sum"] == pytest.approx(picked.sum(), abs=1e-3 * len(picked))
        entropy = -(np.exp(want) * want).sum(-1)
        assert seq["entropy"] == pytest.approx(entropy, abs=1e-3)
        for t, top in enumerate(seq["top"]):
            assert top["ids"][0] == int(want[t].argmax())
            assert top["logprobs"] == pytest.approx(np.sort(want[t])[::-1][:5], abs=1e-3)
            assert top["pieces"] == tokenizer.convert_ids_to_tokens(top["ids"])
    # one text alone gives the same numbers as in the batch
    alone = py.logprobs("smol", SMOL_TEXTS[1])["sequences"][0]
    assert alone["logprobs"][:-1] == pytest.approx(r["sequences"][1]["logprobs"][:-1], abs=1e-4)
    # greedy generation is transformers' generate(do_sample=False)
    import torch
    prompt = SMOL_TEXTS[0]
    g = py.generate("smol", prompt, max_tokens=12, temperature=0)
    assert g["promptTokens"] == tokenizer(prompt)["input_ids"]
    with torch.no_grad():
        out = model.generate(torch.tensor([g["promptTokens"]]), do_sample=False, max_new_tokens=12,
                             pad_token_id=tokenizer.eos_token_id)[0, len(g["promptTokens"]):].tolist()
    (c,) = g["completions"]
    assert c["tokens"] == out
    assert c["finishReason"] == ("eos" if out[-1] == tokenizer.eos_token_id else "length")
    assert c["text"] == tokenizer.decode([t for t in out if t != tokenizer.eos_token_id])
    everything = g["promptTokens"] + out
    want = reference_logprobs(model, everything)
    n = len(g["promptTokens"])
    assert c["logprob"] == pytest.approx(sum(want[n - 1 + k, t] for k, t in enumerate(out)), abs=1e-2)
    # sampling at temperature 1 with top-k 1 is greedy too; seeds reproduce
    assert py.generate("smol", prompt, max_tokens=12, top_k=1, seed=3)["completions"][0]["tokens"] == out
    a = py.generate("smol", prompt, max_tokens=6, seed=11, n=2, temperature=0.8, top_p=0.9)
    assert py.generate("smol", prompt, max_tokens=6, seed=11, n=2, temperature=0.8, top_p=0.9) == a
    assert py.generate("smol", prompt, max_tokens=6, seed=12, temperature=0.8, top_p=0.9)["completions"] == \
        a["completions"][1:]
    py.call("model/unload", name="smol")


def test_shell_smollm2_load_and_tokenize(shared, smol_reference):
    tokenizer, _ = smol_reference
    info = ok("model", "load", "smol", SMOLLM2, env=shared)
    try:
        assert info["architecture"] == "llama" and info["vocab"] == len(tokenizer)
        for text in SMOL_TEXTS:
            got = ok("model", "tokenize", "smol", text, env=shared)
            assert got["tokens"] == tokenizer(text)["input_ids"], text
            ids = ",".join(map(str, got["tokens"]))
            assert ok("model", "detokenize", "smol", ids, env=shared)["text"] == tokenizer.decode(got["tokens"])
        r = ok("model", "logprobs", "smol", *SMOL_TEXTS[:2], "--topk", "2", env=shared)
        assert [s["tokens"] for s in r["sequences"]] == [tokenizer(t)["input_ids"] for t in SMOL_TEXTS[:2]]
        long = " x" * 9000
        assert len(tokenizer(long)["input_ids"]) > info["contextLength"]
        p = distill("model", "logprobs", "smol", "short", long, env=shared, check=1)
        assert "error -32602" in p.stderr and "params.texts[1]" in p.stderr
    finally:
        distill("model", "unload", "smol", env=shared)


def test_shell_prompt_formats_build_their_requests(echo_daemon, tmp_path):
    """--template, --chat and --chat-system set params.prompt; two formats at once are refused."""
    def sent(*args):
        return sent_by_shell(echo_daemon, *args, cwd=tmp_path)
    base = ("score", "--teacher-model", "big", "--student-model", "S=small", "--dataset", "pairs")
    assert sent(*base, "--template", "Q: {input}\nA: ")["params"]["prompt"] == {"template": "Q: {input}\nA: "}
    assert sent(*base, "--chat")["params"]["prompt"] == {"chat": True}
    assert sent(*base, "--chat-system", "Be brief.")["params"]["prompt"] == {"chat": {"system": "Be brief."}}
    assert sent("export", "big", "pairs", "out.safetensors", "--chat")["params"]["prompt"] == {"chat": True}
    assert sent("generate-targets", "big", "pairs", "--template", "{full}")["params"]["prompt"] == {"template": "{full}"}
    # behaviour's contexts: the format goes inside params.behaviour, which is where diagnose reads it
    params = sent("diagnose", "--dataset", "pairs", "--behaviour", "small", "--chat")["params"]
    assert params["behaviour"] == {"student": "small", "prompt": {"chat": True}} and "prompt" not in params
    for args in [base + ("--chat", "--separator", " "), ("export", "big", "pairs", "o", "--template", "x", "--chat")]:
        p = subprocess.run([DISTILL, *args], capture_output=True, text=True, env=dict(env_for(), DISTILLD=echo_daemon),
                           timeout=60)
        assert p.returncode == 2 and "give one of --separator" in p.stderr, (args, p.stderr)


def test_shell_commands_for_models_reading_datasets_build_their_requests(echo_daemon, tmp_path):
    """Issue #13's methods at the shell: teacher-forced score, the behavioural diagnosis, the
    audit, export and generated targets."""
    def sent(*args):
        return sent_by_shell(echo_daemon, *args, cwd=tmp_path)
    assert sent("score", "--teacher-model", "big", "--student-model", "S=small", "--student-model", "T=tiny",
                "--dataset", "pairs", "--separator", " ", "--loss", "nll") == {
        "method": "distill/score",
        "params": {"teacher": {"model": "big"}, "students": {"S": {"model": "small"}, "T": {"model": "tiny"}},
                   "loss": {"name": "nll"}, "dataset": "pairs", "prompt": {"separator": " "}}}
    assert sent("diagnose", "--dataset", "pairs", "--behaviour", "small", "--behaviour-teacher", "big")["params"] == {
        "dataset": "pairs", "behaviour": {"student": "small", "teacher": "big"}}
    assert sent("audit", "--teacher", "t", "--student", "A=a.npy", "--ks", "1,5,20", "--bound", "0.05") == {
        "method": "distill/audit",
        "params": {"teacher": "t", "student": {"path": str(tmp_path / "a.npy")}, "ks": [1, 5, 20], "bound": 0.05}}
    assert sent("export", "big", "pairs", "out.safetensors", "--k", "8", "--context", "simplified", "--overwrite") == {
        "method": "teacher/export",
        "params": {"model": "big", "dataset": "pairs", "path": str(tmp_path / "out.safetensors"), "k": 8,
                   "context": "simplified", "overwrite": True}}
    assert sent("generate-targets", "big", "pairs", "-n", "4", "--max-tokens", "16", "--temperature", "0.8",
                "--seed", "2", "--limit", "10") == {
        "method": "teacher/generate",
        "params": {"model": "big", "dataset": "pairs", "n": 4, "maxTokens": 16, "temperature": 0.8, "seed": 2,
                   "limit": 10}}
    for args, words in [(("audit", "--teacher", "t"), "audit needs"), (("export", "big", "pairs"), "export takes"),
                        (("generate-targets", "big", "pairs", "-n", "x"), "whole number"),
                        (("diagnose", "--dataset", "d", "--behaviour-teacher", "t"), "needs --behaviour"),
                        (("score", "--student-model", "S"), "NAME=MODEL")]:
        p = subprocess.run([DISTILL, *args], capture_output=True, text=True, env=dict(env_for(), DISTILLD=echo_daemon),
                           timeout=60)
        assert p.returncode == 2 and words in p.stderr, (args, p.stderr)


def test_python_text_helpers_build_their_requests(echo_daemon, tmp_path, monkeypatch):
    """The #13 helpers send what Protocol/README.md documents, leaving out what is not given."""
    from distilld import Client
    from schema import validate_params
    monkeypatch.chdir(tmp_path)
    with Client.start(echo_daemon) as c:
        sent = c.score_text("T", ["S1", "S2"], "d", loss="nll", prompt=" ", worst=3, per_example=True)
        assert sent == {"method": "distill/score", "params": {
            "dataset": "d", "worst": 3, "perExample": True, "teacher": {"model": "T"},
            "students": {"S1": {"model": "S1"}, "S2": {"model": "S2"}}, "loss": {"name": "nll"},
            "prompt": {"separator": " "}}}
        assert c.score_text("T", {"A": "S"}, "d", loss={"name": "forward_kl", "temperature": 2})["params"] == {
            "dataset": "d", "teacher": {"model": "T"}, "students": {"A": {"model": "S"}},
            "loss": {"name": "forward_kl", "temperature": 2}}
        assert c.score_text("T", "S", "d")["params"]["students"] == {"S": {"model": "S"}}
        assert c.diagnose_behaviour("d", "S", teacher="T", max_examples=4)["params"] == {
            "dataset": "d", "maxExamples": 4, "behaviour": {"student": "S", "teacher": "T"}}
        assert c.explain_text("T", "S", "a text", position=2, charts_dir="charts")["params"] == {
            "example": 0, "position": 2, "chartsDir": str(tmp_path / "charts"),
            "teacher": {"model": "T", "text": "a text"}, "students": {"S": {"model": "S", "text": "a text"}}}
        assert c.generate_targets("T", "d", context="simplified", n=2, max_tokens=5, seed=1, stop=".",
                                  prompt="\n")["params"] == {
            "model": "T", "dataset": "d", "context": "simplified", "n": 2, "maxTokens": 5, "seed": 1,
            "prompt": {"separator": "\n"}, "stop": ["."]}
        assert c.export_targets("T", "d", "out.safetensors", k=5, overwrite=True)["params"] == {
            "model": "T", "dataset": "d", "path": str(tmp_path / "out.safetensors"), "k": 5, "overwrite": True}
        assert c.audit_topk({"model": "T", "text": "x"}, {"model": "S", "text": "x"}, ks=[1, 2], bound=0.1)[
            "params"] == {"teacher": {"model": "T", "text": "x"}, "student": {"model": "S", "text": "x"},
                          "ks": [1, 2], "bound": 0.1}
        # Every request above is one the daemon's schemas accept.
        for method, params in [
                ("distill/score", c.score_text("T", "S", "d", loss="nll", prompt=" ")["params"]),
                ("distill/diagnose", c.diagnose_behaviour("d", "S", teacher="T")["params"]),
                ("distill/explain", c.explain_text("T", "S", "t", position=0)["params"]),
                ("teacher/generate", c.generate_targets("T", "d", n=2)["params"]),
                ("teacher/export", c.export_targets("T", "d", "o.safetensors")["params"]),
                ("distill/audit", c.audit_topk({"model": "T", "text": "x"}, {"model": "S", "text": "x"})["params"])]:
            validate_params(method, params)


def test_python_client_raises_cancelled_with_the_partial_result(tmp_path):
    """-32800 is `Cancelled` (still an RPCError); its `partial` is the data's partial result."""
    from distilld import Cancelled, Client, RPCError
    partial = {"students": [], "partial": {"examplesDone": 32, "examples": 96}}
    script = tmp_path / "cancelling-distilld"
    script.write_text(f"#!{sys.executable}\n" + (
        "import json, sys\n"
        "for line in sys.stdin:\n"
        "    m = json.loads(line)\n"
        "    if 'id' not in m: continue\n"
        "    data = {'partial': %r, 'examplesDone': 32, 'examples': 96} if m['method'] == 'partial' else None\n"
        "    e = {'code': -32800, 'message': 'Request cancelled'}\n"
        "    if data: e['data'] = data\n"
        "    print(json.dumps({'jsonrpc': '2.0', 'id': m['id'], 'error': e}), flush=True)\n") % (partial,))
    script.chmod(0o755)
    with Client.start(str(script)) as c:
        with pytest.raises(Cancelled) as info:
            c.call("partial")
        e = info.value
        assert isinstance(e, RPCError) and e.code == -32800
        assert (e.partial, e.examples_done, e.examples) == (partial, 32, 96)
        with pytest.raises(Cancelled) as info:
            c.call("whole")
        assert (info.value.partial, info.value.examples_done, info.value.data) == (None, None, None)


def test_python_client_never_waits_forever_once_it_cannot_read(tmp_path):
    """A reply the client cannot read ends its reading thread: the call waiting is failed, and a
    call made afterwards fails at once instead of waiting for a reply nothing will read."""
    from distilld import Client
    script = tmp_path / "garbling-distilld"
    script.write_text(f"#!{sys.executable}\n" + (
        "import json, sys, time\n"
        "for line in sys.stdin:\n"
        "    m = json.loads(line)\n"
        "    print('{not json', flush=True)\n"
        "    time.sleep(30)\n"))  # alive all along: only the client's reading has ended
    script.chmod(0o755)
    with Client.start(str(script)) as c:
        started = time.monotonic()
        with pytest.raises(ConnectionError):
            c.call("first", timeout=20)
        with pytest.raises(ConnectionError):
            c.call("second", timeout=20)
        assert time.monotonic() - started < 10


def test_python_text_helpers_against_the_daemon(py, tmp_path):
    """Each #13 helper against the real daemon, with n-gram models built from a paired dataset
    (a trigram teacher and a bigram student):
    the helper's reply is the raw call's, and an export written by the helper loads back."""
    words = ["red", "green", "blue", "gold"]
    pairs = [{"id": f"p{i}", "full": f"the {words[i % 4]} key opens box {i % 3}", "simplified": f"box {i % 3}",
              "target": f"it is {words[i % 4]}"} for i in range(12)]
    py.call("dataset/load", {"name": "pairs", "examples": pairs})
    # Teacher and student from the same text (one vocabulary), of different orders.
    for name, order in (("ng-full", 3), ("ng-simplified", 2)):
        py.load_model(name, build={"dataset": "pairs", "order": order, "text": "full", "withTarget": True,
                                   "discountFallback": [0.5, 1, 1.5]})
    score = py.score_text("ng-full", {"S": "ng-simplified"}, "pairs", loss="forward_kl", worst=2)
    assert score == py.call("distill/score", {
        "teacher": {"model": "ng-full"}, "students": {"S": {"model": "ng-simplified"}}, "dataset": "pairs",
        "loss": {"name": "forward_kl"}, "worst": 2})
    assert score["prompt"]["examples"] == 12 and "partial" not in score
    behaviour = py.diagnose_behaviour("pairs", "ng-simplified", max_examples=3)
    assert behaviour == py.call("distill/diagnose", {"dataset": "pairs", "behaviour": {"student": "ng-simplified"},
                                                     "maxExamples": 3})
    assert behaviour["behaviour"]["student"] == "ng-simplified"
    text = pairs[0]["full"]
    explained = py.explain_text("ng-full", "ng-simplified", text, position=1)
    assert explained == py.call("distill/explain", {
        "teacher": {"model": "ng-full", "text": text}, "students": {"ng-simplified": {"model": "ng-simplified", "text": text}},
        "example": 0, "position": 1})
    assert explained["position"] == 1 and len(explained["tokens"]) > 1
    generated = py.generate_targets("ng-full", "pairs", n=2, max_tokens=4, seed=3, limit=2)
    assert generated == py.call("teacher/generate", {"model": "ng-full", "dataset": "pairs", "n": 2, "maxTokens": 4,
                                                     "seed": 3, "limit": 2})
    exported = py.export_targets("ng-full", "pairs", str(tmp_path / "t.safetensors"), k=3)
    from safetensors.numpy import load_file
    tensors = load_file(str(tmp_path / "t.safetensors"))
    assert exported["k"] == 3 and tensors["topk_indices"].shape[-1] == 3
    audit = py.audit_topk({"model": "ng-full", "text": text}, {"model": "ng-simplified", "text": text}, ks=[1, 2])
    assert audit == py.call("distill/audit", {"teacher": {"model": "ng-full", "text": text},
                                              "student": {"model": "ng-simplified", "text": text}, "ks": [1, 2]})
