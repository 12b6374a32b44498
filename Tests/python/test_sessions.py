"""One client cannot hold up the others, and one session answers in the order it was asked.

Two kinds of blocking load are used. A FIFO that no one writes to: opening it for reading blocks
until a writer comes (if the store refuses a FIFO before opening it, those loads are answered at
once with 1004 and the checks that need a load still in progress are skipped; the checks that the
daemon keeps answering everyone still hold). And a regular file on a stalled file system
(stalled_fs.py, FUSE served by the test): its reads hang until the test lets them go, as a hung
network mount's do, and then return the real bytes, so a cancelled load can finish late."""

import io

import json
import os
import socket
import subprocess
import time

import numpy as np
import pytest

from conftest import wait_for
from distilld.client import encode_array
from stalled_fs import StalledFS

LOADS = 70  # more sessions than the worker threads a shared pool has (about 64)


def rpc_line(message):
    return json.dumps(message).encode() + b"\n"


class Session:
    """A socket session read with a deadline, so a daemon that stopped answering fails the test."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buffer = b""

    def send(self, message):
        self.sock.sendall(rpc_line(message))

    def receive(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def reply(self, id, timeout=5.0):
        """The reply with this id (notifications skipped), or None if none came in time."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.receive(max(0.0, deadline - time.monotonic()))
            if m is None or m.get("id") == id:
                return m

    def call(self, method, params=None, id=1, timeout=5.0):
        message = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return self.reply(id, timeout)

    def close(self):
        self.sock.close()


@pytest.fixture
def daemon(listening):
    return listening


@pytest.fixture
def fifo(tmp_path):
    path = str(tmp_path / "never-written.npy")
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("source", ["fifo", "stalled"])
def test_blocked_loads_in_many_sessions_starve_no_one(daemon, source, request):
    path, proc = daemon
    blocking = request.getfixturevalue("fifo") if source == "fifo" else request.getfixturevalue("stalled").path
    sessions = [Session(path) for _ in range(LOADS)]
    for i, s in enumerate(sessions):
        s.send({"jsonrpc": "2.0", "id": 1, "method": "teacher/load", "params": {"name": f"t{i}", "path": blocking}})
    time.sleep(0.5)

    # Another client is answered at once, lifecycle reads and real work alike.
    other = Session(path)
    started = time.monotonic()
    pong = other.call("distilld/ping", {"payload": "x"}, id="p", timeout=3)
    assert pong is not None, "distilld/ping got no answer while other sessions had blocked loads"
    assert pong["result"] == {"pong": True, "payload": "x"}
    assert time.monotonic() - started < 3
    status = other.call("distilld/status", id="s", timeout=3)
    assert status is not None and status["result"]["sessions"] == LOADS + 1
    assert other.call("teacher/load", {"name": "demo", "path": "builtin:demo"}, id="d", timeout=5)["result"]
    assert other.call("teacher/info", {"name": "demo"}, id="i", timeout=5)["result"]

    # Every load is still in progress, or was refused with a clear error: too many blocked
    # reads (1005), or a FIFO refused by the store (1004).
    blocked = []
    for i, s in enumerate(sessions):
        m = s.receive(0.05)
        if m is None:
            blocked.append(i)
        else:
            assert m["error"]["code"] in (1004, 1005), m
            if m["error"]["code"] == 1005:
                assert m["error"]["data"]["reason"] == "tooManyBlockingReads", m
    if blocked:
        # A blocked load is cancellable: -32800 at once, and its session goes on.
        first = sessions[blocked[0]]
        first.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 1}})
        cancelled = first.reply(1, timeout=3)
        assert cancelled is not None, "a cancelled load was not answered"
        assert cancelled["error"]["code"] == -32800
        assert first.call("distilld/ping", id=2, timeout=3)["result"]["pong"] is True
        teachers = first.call("teacher/list", id=3, timeout=3)["result"]["teachers"]
        assert [t["name"] for t in teachers] == ["demo"], "a cancelled load changed the registry"

    # And the daemon can still be stopped by anyone.
    assert other.call("distilld/stop", id="x", timeout=3)["result"] == {"stopping": True}
    if source == "stalled":
        # A thread waiting on a read that its file server has taken cannot be killed until the
        # server answers (the kernel's rule for FUSE and hard network mounts alike), so the
        # process ends once the file system answers.
        request.getfixturevalue("stalled").release()
    proc.wait(5)
    for s in sessions:
        s.close()


@pytest.mark.parametrize("source", ["fifo", "stalled"])
def test_a_session_bounds_its_blocked_loads(daemon, source, request):
    path, _ = daemon
    blocking = request.getfixturevalue("fifo") if source == "fifo" else request.getfixturevalue("stalled").path
    s = Session(path)
    refused = None
    for i in range(1, 20):
        s.send({"jsonrpc": "2.0", "id": i, "method": "dataset/load", "params": {"name": f"d{i}", "path": blocking}})
        m = s.reply(i, timeout=0.3)
        if m is None:
            # Still blocked: cancel it, which answers at once even though the read goes on.
            s.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": i}})
            m = s.reply(i, timeout=3)
            assert m is not None, "a cancelled load was not answered"
            if m["error"]["code"] == -32800:
                continue
        assert m["error"]["code"] in (1004, 1005), m
        if m["error"]["code"] == 1004:
            pytest.skip("the store refuses a FIFO before reading it: no load blocks")
        refused = m
        break
    assert refused is not None, "a session could leave any number of reads blocked"
    assert refused["error"]["data"]["reason"] == "tooManyBlockingReads"
    assert refused["error"]["data"]["limit"] >= 1
    assert "blocked" in refused["error"]["message"]
    # Reading and everything that reads no file go on.
    assert s.call("distilld/ping", id="p", timeout=3)["result"]["pong"] is True
    assert s.call("dataset/list", id="l", timeout=3)["result"] == {"datasets": []}


def test_a_client_that_never_reads_its_replies_starves_no_one(daemon):
    path, _ = daemon
    hog = Session(path)
    hog.sock.setblocking(True)
    payload = "y" * 1000
    burst = b"".join(rpc_line({"jsonrpc": "2.0", "id": i, "method": "distilld/ping", "params": {"payload": payload}})
                     for i in range(3000))
    hog.sock.settimeout(5)
    try:
        hog.sock.sendall(burst)
    except socket.timeout:
        pass  # the daemon stopped reading it: that is allowed
    time.sleep(0.5)
    other = Session(path)
    pong = other.call("distilld/ping", id="p", timeout=3)
    assert pong is not None, "one client's unread replies blocked another client"
    assert other.call("teacher/load", {"name": "demo", "path": "builtin:demo"}, id="d", timeout=5)["result"]
    # The hog still gets its replies, in full, once it reads.
    seen = set()
    while len(seen) < 3000:
        m = hog.receive(10)
        assert m is not None, f"only {len(seen)} replies of 3000"
        assert m["result"]["payload"] == payload
        seen.add(m["id"])
    assert seen == set(range(3000))


def run_stdio(distilld, lines, timeout=20):
    out = subprocess.run([distilld], input="".join(json.dumps(m) + "\n" for m in lines).encode(),
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=timeout)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("ending", ["end-of-input", "shutdown-exit"])
def test_diagnostics_of_a_last_did_open_are_always_sent(distilld, tmp_path, ending):
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"id": "same", "full": "The cat sat.", "simplified": "the cat sat"}) + "\n")
    uri = "file://" + str(data)
    script = [
        {"jsonrpc": "2.0", "id": 1, "method": "dataset/load", "params": {"name": "ds", "path": str(data)}},
        {"jsonrpc": "2.0", "method": "textDocument/didOpen",
         "params": {"textDocument": {"uri": uri, "languageId": "jsonl", "version": 1, "text": data.read_text()}}},
    ]
    if ending == "shutdown-exit":
        script += [{"jsonrpc": "2.0", "id": 2, "method": "shutdown"}, {"jsonrpc": "2.0", "method": "exit"}]
    for run in range(8):
        messages = run_stdio(distilld, script)
        published = [m for m in messages if m.get("method") == "textDocument/publishDiagnostics"]
        assert len(published) == 1, f"run {run}: {messages}"
        assert published[0]["params"]["uri"] == uri
        if ending == "shutdown-exit":
            # Accepted work is finished before shutdown answers.
            order = [m.get("id", m.get("method")) for m in messages]
            assert order.index("textDocument/publishDiagnostics") < order.index(2), order


def test_read_time_errors_wait_for_earlier_barriers(distilld):
    script = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}},
        {"jsonrpc": "2.0", "id": 2, "method": "no/such/method"},
        {"jsonrpc": "2.0", "id": 3, "method": "teacher/load", "params": {"name": "t", "path": "builtin:demo"}},
        {"jsonrpc": "1.0", "id": 4, "method": "distilld/ping"},
        {"jsonrpc": "2.0", "id": 5, "method": "initialize", "params": {"capabilities": {}}},
        {"jsonrpc": "2.0", "id": 6, "method": "shutdown"},
        {"jsonrpc": "2.0", "id": 7, "method": "distilld/ping"},
    ]
    for run in range(5):
        replies = run_stdio(distilld, script)
        assert [m["id"] for m in replies] == [1, 2, 3, 4, 5, 6, 7], f"run {run}"
        assert "result" in replies[0] and replies[1]["error"]["code"] == -32601
        assert [replies[i]["error"]["code"] for i in (3, 4, 6)] == [-32600] * 3


def test_a_saved_fifo_blocks_nothing(raw, fifo):
    """didSave without text re-reads the file: a FIFO is refused, not waited on."""
    d = raw()
    d.send_line({"jsonrpc": "2.0", "method": "textDocument/didSave",
                 "params": {"textDocument": {"uri": "file://" + fifo}}})
    d.send_line({"jsonrpc": "2.0", "id": 1, "method": "shutdown"})
    d.send_line({"jsonrpc": "2.0", "method": "exit"})
    try:
        code = d.proc.wait(5)
    except subprocess.TimeoutExpired:
        pytest.fail("shutdown waited for a FIFO that the editor path was reading")
    assert d.read_line() == {"jsonrpc": "2.0", "id": 1, "result": None}
    assert code == 0


@pytest.fixture
def stalled(tmp_path):
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    buffer = io.BytesIO()
    np.save(buffer, np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    fs = StalledFS.start(str(mountpoint), "teacher.npy", buffer.getvalue())
    if fs is None:
        pytest.skip("no FUSE here (needs root and /dev/fuse)")
    yield fs
    fs.stop()


def test_a_load_stalled_on_its_file_is_cancelled_at_once_and_its_late_result_discarded(daemon, stalled):
    path, _ = daemon
    a, b, other = Session(path), Session(path), Session(path)
    a.send({"jsonrpc": "2.0", "id": 1, "method": "teacher/load", "params": {"name": "late", "path": stalled.path}})
    assert stalled.reads_seen.wait(5), "the load never read its file"
    b.send({"jsonrpc": "2.0", "id": 1, "method": "teacher/load", "params": {"name": "kept", "path": stalled.path}})
    assert a.receive(0.3) is None and b.receive(0.3) is None, "the reads were supposed to stall"
    # Others are served meanwhile; so is this session's own next read once its load is cancelled.
    assert other.call("distilld/ping", id="p", timeout=3)["result"]["pong"] is True
    a.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 1}})
    cancelled = a.reply(1, timeout=3)
    assert cancelled is not None and cancelled["error"]["code"] == -32800, cancelled
    assert a.call("teacher/list", id=2, timeout=3)["result"] == {"teachers": []}
    # The file answers: the uncancelled load succeeds, the cancelled one changes nothing.
    stalled.release()
    kept = b.reply(1, timeout=10)
    assert kept is not None and kept["result"]["name"] == "kept", kept
    time.sleep(0.5)
    names = [t["name"] for t in other.call("teacher/list", id="l", timeout=3)["result"]["teachers"]]
    assert names == ["kept"], "a cancelled load was committed when its file answered"
    assert a.receive(0.2) is None, "a cancelled load was answered twice"


def cpu_seconds(pid):
    """User + system CPU time of a process, from /proc (clock ticks converted)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def long_explain():
    """Seconds of work: every row of a 64 x 32000 pair with a 256-point temperature sweep."""
    rng = np.random.default_rng(3)
    # The binary form, so the request is parsed in milliseconds and the time is the analysis's.
    z = [encode_array(rng.standard_normal((64, 1, 32000)).astype(np.float32)) for _ in range(2)]
    return {"teacher": {"logits": z[0]}, "students": {"A": {"logits": z[1]}},
            "temperatures": list(np.geomspace(1e-2, 1e2, 256)), "charts": False}


def test_work_of_a_client_that_hung_up_is_cancelled(daemon):
    """A client that closes its connection in the middle of a long request reads no reply: the
    work is cancelled instead of keeping a core busy for nobody (it went on for as long as the
    analysis took, and for ever with the extreme temperatures that once hung explain)."""
    path, proc = daemon
    params = long_explain()
    s = Session(path)
    s.send({"jsonrpc": "2.0", "id": 1, "method": "distill/explain", "params": params})
    time.sleep(1.0)  # parsed and running
    busy_from = cpu_seconds(proc.pid)
    time.sleep(0.5)
    assert cpu_seconds(proc.pid) - busy_from > 0.3, "the explanation should be running"
    s.close()
    time.sleep(0.5)  # the hang-up is seen within about 0.1 s and the sweep polls the token
    quiet_from = cpu_seconds(proc.pid)
    time.sleep(1.0)
    assert cpu_seconds(proc.pid) - quiet_from < 0.15, "work went on after the client hung up"
    assert Session(path).call("distilld/ping", {"payload": "x"}, id="p")["result"]["payload"] == "x"


def test_a_client_that_only_stops_sending_still_gets_its_reply(daemon):
    """Half-closing (shutdown of the sending side, as scripts that pipe their requests do) is not
    hanging up: the request runs to the end and is answered."""
    path, _ = daemon
    s = Session(path)
    s.send({"jsonrpc": "2.0", "id": 1, "method": "distill/explain",
            "params": {"teacher": {"probs": [[0.7, 0.2, 0.1]]}, "students": {"A": {"probs": [[0.6, 0.3, 0.1]]}},
                       "temperatures": list(np.geomspace(1e-2, 1e2, 256))}})
    s.sock.shutdown(socket.SHUT_WR)
    reply = s.reply(1, timeout=30)
    assert reply is not None and "result" in reply, reply
