"""The workspace file at its edges (issue #10): temporary files left by a killed writer, set-aside
copies, a directory or an unwritable place, duplicate names, FIFOs, and the shared daemon's
default workspace that survives an idle exit."""

import json
import os
import shutil
import signal
import subprocess
import threading
import time

import numpy as np

from conftest import wait_for
from test_socket import rpc, sock_client


def run(distilld, *args, env=None, timeout=20):
    return subprocess.run([distilld, *args], capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, env=env)


def teacher_file(path, seed=0):
    np.save(path, np.random.default_rng(seed).random((2, 4)).astype(np.float32))
    return str(path)


# ----------------------------------------------------------------------------- the workspace file

def call(d, method, params=None, id=1):
    d.send_line({"jsonrpc": "2.0", "id": id, "method": method, "params": params or {}})
    while True:
        m = d.read_line()
        if m.get("id") == id:
            return m


def stderr_of(d):
    d.close()
    return d.proc.stderr.read()


def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_stale_temporary_files_of_the_workspace_are_removed_at_start(raw, tmp_path):
    ws = tmp_path / "ws.json"
    dead, live = dead_pid(), os.getpid()
    planted = {
        f"ws.json.tmp.{dead}.12345": False,  # a writer killed mid-write: removed
        f"ws.json.tmp.{live}.678": True,  # a live process may still be writing it: kept
        "ws.json.tmp.notapid.1": True,  # not the daemon's pattern: kept
        f"other.json.tmp.{dead}.1": True,  # another workspace's: kept
    }
    for name in planted:
        (tmp_path / name).write_text("{")
    d = raw("--workspace", str(ws))
    assert call(d, "distilld/ping")["result"]["pong"]
    for name, kept in planted.items():
        assert (tmp_path / name).exists() == kept, name
    d.close()


def test_kill_9_during_workspace_writes_loses_nothing_acknowledged_and_leaves_no_temporary_files(distilld, tmp_path):
    ws = tmp_path / "ws.json"
    files = [teacher_file(tmp_path / f"t{i}.npy", i) for i in range(4)]
    acknowledged = set()
    for trial in range(20):
        proc = subprocess.Popen([distilld, "--workspace", str(ws)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, bufsize=0)
        proc.stdin.write(b'{"jsonrpc":"2.0","id":"ready","method":"distilld/ping"}\n')
        out = proc.stdout.readline()  # started (and restored); now load names as fast as it can, and kill it
        for i in range(40):
            name = f"n{trial}_{i}"
            msg = {"jsonrpc": "2.0", "id": name, "method": "teacher/load",
                   "params": {"name": name, "path": files[i % len(files)]}}
            proc.stdin.write(json.dumps(msg).encode() + b"\n")
        time.sleep(0.005 * (trial % 6 + 1))
        proc.send_signal(signal.SIGKILL)
        out += proc.stdout.read()
        proc.wait()
        for line in out.splitlines():
            m = json.loads(line)
            if "result" in m and m["id"] != "ready":
                acknowledged.add(m["id"])
    assert acknowledged, "no load was acknowledged before the kill; the test proves nothing"
    d = subprocess.run([distilld, "--workspace", str(ws)], capture_output=True, timeout=60,
                       input=b'{"jsonrpc":"2.0","id":1,"method":"teacher/list"}\n')
    names = {t["name"] for t in json.loads(d.stdout.splitlines()[0])["result"]["teachers"]}
    assert acknowledged <= names
    assert [n for n in os.listdir(tmp_path) if ".tmp." in n] == []


def test_workspace_that_is_a_directory_is_refused_at_start_and_left_alone(distilld, tmp_path):
    d = tmp_path / "wsdir"
    d.mkdir()
    (d / "inside.txt").write_text("x")
    p = run(distilld, "--workspace", str(d))
    assert p.returncode != 0
    assert b"is a directory" in p.stderr, p.stderr
    assert (d / "inside.txt").read_text() == "x"
    assert not os.path.exists(str(d) + ".bad")


def test_workspace_in_a_missing_directory_is_refused_at_start(distilld, tmp_path):
    p = run(distilld, "--workspace", str(tmp_path / "missing" / "ws.json"))
    assert p.returncode != 0
    assert b"missing" in p.stderr and b"cannot be written" in p.stderr, p.stderr


def test_every_set_aside_workspace_is_kept(raw, tmp_path):
    ws = tmp_path / "ws.json"
    for i in range(3):
        ws.write_text(f"corrupt {i}")
        d = raw("--workspace", str(ws))
        assert call(d, "distilld/ping")["result"]["pong"]
        d.close()
    kept = sorted(n for n in os.listdir(tmp_path) if n.startswith("ws.json.bad"))
    assert kept == ["ws.json.bad", "ws.json.bad.1", "ws.json.bad.2"], kept
    assert sorted((tmp_path / n).read_text() for n in kept) == ["corrupt 0", "corrupt 1", "corrupt 2"]


def write_workspace(ws, teachers=(), datasets=()):
    ws.write_text(json.dumps({"version": 1, "teachers": [
        {"name": n, "path": p, "format": None, "options": {}} for n, p in teachers], "datasets": [
        {"name": n, "path": p, "kind": "paired", "format": None, "options": {}} for n, p in datasets]}))


def test_a_teacher_and_a_dataset_of_the_same_name_are_reported(raw, tmp_path):
    ws = tmp_path / "ws.json"
    csv = tmp_path / "d.csv"
    csv.write_text("context,simplified\nc1,s1\n")
    write_workspace(ws, teachers=[("same", teacher_file(tmp_path / "t.npy"))], datasets=[("same", str(csv))])
    d = raw("--workspace", str(ws))
    info = call(d, "teacher/info", {"name": "same"})
    assert "result" in info, info  # the first entry (the teacher) is kept
    err = stderr_of(d)
    assert b"'same'" in err and b"more than once" in err, err


def test_a_fifo_in_the_workspace_does_not_stop_the_daemon_from_serving(raw, tmp_path):
    ws = tmp_path / "ws.json"
    fifo = str(tmp_path / "pipe.npy")
    os.mkfifo(fifo)
    write_workspace(ws, teachers=[("pipe", fifo), ("good", teacher_file(tmp_path / "t.npy"))])
    d = raw("--workspace", str(ws))
    result = {}
    t = threading.Thread(target=lambda: result.update(call(d, "teacher/list")), daemon=True)
    t.start()
    t.join(10)
    assert result, "the daemon did not answer within 10 s"
    assert [x["name"] for x in result["result"]["teachers"]] == ["good"]
    err = stderr_of(d)
    assert b"pipe" in err and b"not a regular file" in err, err
    # The entry is kept in the workspace file, as for any entry that failed to restore.
    assert "pipe" in ws.read_text()


# ----------------------------------------------------------------------------- the shared daemon keeps its workspace

def test_shared_daemon_restores_what_it_had_after_an_idle_exit(distilld, tmp_runtime, tmp_path):
    t = teacher_file(tmp_path / "t.npy")
    load = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "teacher/load", "params": {"name": "kept", "path": t}})
    p = subprocess.run([distilld, "connect", "--idle-timeout", "1"], input=load.encode() + b"\n", capture_output=True,
                       timeout=30)
    assert "result" in json.loads(p.stdout.splitlines()[0]), p.stdout
    sock = os.path.join(tmp_runtime, "distilld", "distilld.sock")
    assert wait_for(lambda: not os.path.exists(sock), timeout=15)  # idled out
    ws = os.path.join(tmp_runtime, "distilld", "workspace.json")
    assert os.path.exists(ws)
    p = subprocess.run([distilld, "connect", "--idle-timeout", "1"],
                       input=b'{"jsonrpc":"2.0","id":2,"method":"teacher/list"}\n', capture_output=True, timeout=30)
    assert [x["name"] for x in json.loads(p.stdout.splitlines()[0])["result"]["teachers"]] == ["kept"]
    assert wait_for(lambda: not os.path.exists(sock), timeout=15)


def test_shared_workspace_flags(distilld, tmp_runtime, tmp_path):
    default = os.path.join(tmp_runtime, "distilld", "workspace.json")
    chosen = str(tmp_path / "mine.json")
    t = teacher_file(tmp_path / "t.npy")
    load = {"jsonrpc": "2.0", "id": 1, "method": "teacher/load", "params": {"name": "x", "path": t}}
    for args, where in ((["--no-workspace"], None), (["--workspace", chosen], chosen)):
        proc = subprocess.Popen([distilld, "--shared", *args], stderr=subprocess.DEVNULL)
        sock = os.path.join(tmp_runtime, "distilld", "distilld.sock")
        try:
            assert wait_for(lambda: os.path.exists(sock))
            s, f = sock_client(sock)
            assert "result" in rpc(f, load)
            s.close()
        finally:
            proc.terminate()
            proc.wait(10)
        assert not os.path.exists(default)
        if where:
            assert "x" in open(where).read()
    p = run(distilld, "--workspace", chosen, "--no-workspace")
    assert p.returncode == 64 and b"--no-workspace" in p.stderr


def test_a_workspace_that_can_no_longer_be_written_is_reported_on_every_change(raw, tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    d = raw("--workspace", str(sub / "ws.json"))
    assert call(d, "distilld/ping")["result"]["pong"]
    shutil.rmtree(sub)  # the directory goes away after start-up
    assert "result" in call(d, "teacher/load", {"name": "t", "path": teacher_file(tmp_path / "t.npy")}, id=2)
    err = stderr_of(d)
    assert b"warning" in err and b"not saved" in err and b"ws.json" in err, err
