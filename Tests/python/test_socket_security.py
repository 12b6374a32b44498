"""Who the socket mode trusts (issue #10): what `--listen` may replace and where it may listen,
which socket `connect` and the Python client may dial, and clients that never read, flood or
exhaust the daemon's file descriptors."""

import json
import os
import resource
import socket
import shutil
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import wait_for
from test_socket import rpc, sock_client


def run(distilld, *args, env=None, timeout=20):
    return subprocess.run([distilld, *args], capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, env=env)


def fake_daemon(path):
    """A listener that counts the connections it receives (someone else's "daemon")."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(8)
    s.settimeout(0.5)
    return s


def received_a_connection(listener):
    try:
        c, _ = listener.accept()
        c.close()
        return True
    except socket.timeout:
        return False


def stale_socket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()  # the file stays; nobody answers


# ----------------------------------------------------------------------------- --listen

def test_listen_never_deletes_a_regular_file(distilld, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("precious\n")
    p = run(distilld, "--listen", str(path))
    assert p.returncode != 0
    assert b"not a socket" in p.stderr, p.stderr
    assert path.read_text() == "precious\n"


def test_listen_never_follows_or_replaces_a_symlink(distilld, tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("kept\n")
    link = tmp_path / "d.sock"
    os.symlink(target, link)
    p = run(distilld, "--listen", str(link))
    assert p.returncode != 0
    assert b"not a socket" in p.stderr, p.stderr
    assert os.path.islink(link) and target.read_text() == "kept\n"


def test_listen_replaces_a_stale_socket(distilld, tmp_path):
    path = str(tmp_path / "d.sock")
    stale_socket(path)
    proc = subprocess.Popen([distilld, "--listen", path], stderr=subprocess.PIPE)
    try:
        def answers():
            try:
                s, f = sock_client(path)
            except OSError:
                return False
            ok = rpc(f, {"jsonrpc": "2.0", "id": 1, "method": "distilld/ping"})["result"]["pong"]
            s.close()
            return ok
        assert wait_for(answers)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give a directory to another user")
def test_listen_refuses_a_directory_another_user_owns(distilld, tmp_path):
    d = tmp_path / "theirs"
    d.mkdir()
    os.chmod(d, 0o777)
    os.chown(d, 65534, 65534)
    p = run(distilld, "--listen", str(d / "d.sock"))
    assert p.returncode != 0
    assert b"owned by uid 65534" in p.stderr, p.stderr
    assert not os.path.exists(d / "d.sock")


def test_listen_refuses_a_directory_others_can_write(distilld, tmp_path):
    d = tmp_path / "open"
    d.mkdir()
    os.chmod(d, 0o777)
    p = run(distilld, "--listen", str(d / "d.sock"))
    assert p.returncode != 0
    assert b"writable by other users" in p.stderr, p.stderr
    assert not os.path.exists(d / "d.sock")


def test_listen_accepts_a_directory_only_its_owner_can_write(distilld, tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    os.chmod(d, 0o755)
    path = str(d / "d.sock")
    proc = subprocess.Popen([distilld, "--listen", path], stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: os.path.exists(path))
        s, f = sock_client(path)
        assert rpc(f, {"jsonrpc": "2.0", "id": 1, "method": "distilld/ping"})["result"]["pong"]
        s.close()
    finally:
        proc.terminate()
        proc.wait(10)


# ----------------------------------------------------------------------------- connect dials only its own user's daemon

@pytest.fixture
def hijacked_runtime(tmp_runtime):
    """The per-user socket directory created first by another user (uid 65534), open to all, with
    their own listener on a 0666 socket."""
    if os.getuid() != 0:
        pytest.skip("needs root to create files owned by another user")
    d = os.path.join(tmp_runtime, "distilld")
    os.mkdir(d)
    os.chmod(d, 0o777)
    os.chown(d, 65534, 65534)
    path = os.path.join(d, "distilld.sock")
    listener = fake_daemon(path)
    os.chmod(path, 0o666)
    os.chown(path, 65534, 65534)
    yield path, listener
    listener.close()


def test_connect_refuses_a_socket_directory_another_user_owns(distilld, hijacked_runtime):
    path, listener = hijacked_runtime
    p = subprocess.run([distilld, "connect"], input=b'{"jsonrpc":"2.0","id":1,"method":"distilld/ping"}\n',
                       capture_output=True, timeout=20)
    assert p.returncode != 0
    assert b"owned by uid 65534" in p.stderr, p.stderr
    assert not received_a_connection(listener)
    # The same socket named explicitly is refused for the same reason.
    p = subprocess.run([distilld, "connect", "--no-start", "--socket", path], capture_output=True, timeout=20,
                       stdin=subprocess.DEVNULL)
    assert p.returncode != 0
    assert b"owned by uid 65534" in p.stderr, p.stderr
    assert not received_a_connection(listener)


def test_connect_refuses_a_socket_another_user_owns_in_a_private_directory(distilld, tmp_runtime):
    if os.getuid() != 0:
        pytest.skip("needs root to create a socket owned by another user")
    d = os.path.join(tmp_runtime, "distilld")
    os.mkdir(d, 0o700)
    path = os.path.join(d, "distilld.sock")
    listener = fake_daemon(path)
    os.chown(path, 65534, 65534)
    try:
        p = subprocess.run([distilld, "connect", "--no-start"], capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
        assert p.returncode != 0
        assert b"owned by uid 65534" in p.stderr, p.stderr
        assert not received_a_connection(listener)
    finally:
        listener.close()


def test_python_client_refuses_a_socket_another_user_owns(hijacked_runtime):
    from distilld import Client

    path, listener = hijacked_runtime
    for kwargs in ({}, {"socket_path": path}):
        with pytest.raises(PermissionError, match="owned by uid 65534"):
            Client.connect(autostart=False, **kwargs)
        assert not received_a_connection(listener)


# ----------------------------------------------------------------------------- nothing a client does stops the others

def ping_within(path, seconds):
    done = {}

    def go():
        try:
            s, f = sock_client(path)
        except OSError:
            return
        done["reply"] = rpc(f, {"jsonrpc": "2.0", "id": "p", "method": "distilld/ping"})
        s.close()
    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(seconds)
    return done.get("reply", {}).get("result", {}).get("pong") is True


def test_a_client_that_never_sends_or_never_reads_does_not_block_others(listening):
    path, proc = listening
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.connect(path)
    # A client that floods requests and never reads a reply.
    flooder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    flooder.connect(path)
    flooder.setblocking(False)
    line = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "distilld/ping", "params": {"payload": "x" * 100}}).encode() + b"\n"
    last_sent, deadline = time.monotonic(), time.monotonic() + 6
    while time.monotonic() < deadline:
        try:
            flooder.send(line * 64)
            last_sent = time.monotonic()
        except BlockingIOError:
            time.sleep(0.01)
    # The daemon stopped reading the flood: its replies to this client fill every buffer.
    assert time.monotonic() - last_sent > 2
    for _ in range(5):
        assert ping_within(path, 3), "a well-behaved client was not answered within 3 s"
    assert proc.poll() is None
    silent.close()
    flooder.close()


def test_a_connection_flood_and_fd_exhaustion_do_not_stop_the_accept_loop(listening):
    path, proc = listening
    resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, (48, 48))
    held = []
    for _ in range(80):  # more than the daemon's descriptors: accept fails with EMFILE
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(path)
        except (BlockingIOError, OSError):
            s.close()
            break
        held.append(s)
    time.sleep(1.5)
    assert proc.poll() is None, "the daemon died"
    # Not spinning: well under half a core while descriptors are exhausted.
    def cpu():
        with open(f"/proc/{proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    before = cpu()
    time.sleep(2)
    assert cpu() - before < 0.5
    for s in held:
        s.close()
    assert wait_for(lambda: ping_within(path, 3), timeout=20), "no new client was served after descriptors were freed"
    assert proc.poll() is None


def test_a_client_whose_thread_cannot_start_is_closed_not_left_hanging(distilld):
    if os.getuid() != 0:
        pytest.skip("needs root to run the daemon as another user with a thread limit")
    # The daemon runs as nobody with few threads allowed (RLIMIT_NPROC counts a user's threads and
    # does not bind root): a new client's thread then cannot start, and nothing else runs short.
    d = tempfile.mkdtemp(prefix="distilld-nproc-")
    os.chown(d, 65534, 65534)
    path = os.path.join(d, "d.sock")
    # nobody must be able to reach the binary: a checkout under a private directory (mktemp -d is
    # 0700) is not, so it runs from a copy in nobody's own directory.
    binary = os.path.join(d, "distilld")
    shutil.copy(distilld, binary)
    os.chmod(binary, 0o755)
    distilld = binary

    def as_nobody():
        os.setgid(65534)
        os.setuid(65534)

    proc = subprocess.Popen([distilld, "--listen", path], stderr=subprocess.DEVNULL, preexec_fn=as_nobody)
    try:
        assert wait_for(lambda: ping_within(path, 1))
        # The work queue's threads are started first (they must not be what runs out) ...
        with ThreadPoolExecutor(8) as pool:
            assert all(pool.map(lambda _: ping_within(path, 10), range(8)))
        threads = len(os.listdir(f"/proc/{proc.pid}/task"))
        # ... then room for a few more threads only (set by a process of the same user: lowering
        # another user's limit would need CAP_SYS_RESOURCE).
        subprocess.run(["prlimit", "--pid", str(proc.pid), f"--nproc={threads + 4}:{threads + 4}"], check=True,
                       preexec_fn=as_nobody)
        held = []
        for _ in range(30):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            held.append(s)
        ping = b'{"jsonrpc":"2.0","id":1,"method":"distilld/ping"}\n'
        outcomes = []
        for s in held:
            s.settimeout(5)
            try:
                s.sendall(ping)
                outcomes.append("served" if b"pong" in s.recv(200) else "closed")
            except (ConnectionResetError, BrokenPipeError):
                outcomes.append("closed")
            except socket.timeout:
                outcomes.append("hanging")
        assert proc.poll() is None, "the daemon died"
        assert "hanging" not in outcomes, outcomes
        assert "closed" in outcomes, "every client was served: the limit did not bite, the test proves nothing"
        for s in held:
            s.close()
        assert wait_for(lambda: ping_within(path, 3), timeout=20)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(d, ignore_errors=True)
