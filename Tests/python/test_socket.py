"""The shared daemon: many clients over a Unix socket, `distilld connect`, the private directory."""

import json
import os
import socket
import stat
import subprocess
import threading
import time

import pytest

from conftest import wait_for


def sock_client(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s, s.makefile("rwb", buffering=0)


def rpc(f, message):
    f.write(json.dumps(message).encode() + b"\n")
    while True:
        line = f.readline()
        assert line, "daemon hung up"
        m = json.loads(line)
        if "id" in m and m["id"] == message.get("id"):
            return m


def test_two_clients_at_once_and_exit_does_not_stop_daemon(listening):
    path, proc = listening
    (s1, f1), (s2, f2) = sock_client(path), sock_client(path)
    results = {}

    def hammer(name, f):
        results[name] = [rpc(f, {"jsonrpc": "2.0", "id": i, "method": "distilld/ping", "params": {"payload": name}})
                         for i in range(200)]

    threads = [threading.Thread(target=hammer, args=("one", f1)), threading.Thread(target=hammer, args=("two", f2))]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    assert all(r["result"]["payload"] == "one" for r in results["one"])
    assert all(r["result"]["payload"] == "two" for r in results["two"])
    status = rpc(f1, {"jsonrpc": "2.0", "id": "s", "method": "distilld/status"})["result"]
    assert status["sessions"] == 2
    # One client's shutdown+exit ends only its session.
    assert rpc(f1, {"jsonrpc": "2.0", "id": 1, "method": "shutdown"})["result"] is None
    f1.write(b'{"jsonrpc":"2.0","method":"exit"}\n')
    assert f1.readline() == b""
    s1.close()
    # The other one is still served, and so is a newcomer.
    assert rpc(f2, {"jsonrpc": "2.0", "id": 5, "method": "distilld/ping"})["result"]["pong"]
    s2.close()
    s3, f3 = sock_client(path)
    assert rpc(f3, {"jsonrpc": "2.0", "id": 6, "method": "distilld/ping"})["result"]["pong"]
    # An abrupt disconnect mid-message does not take the daemon down either.
    f3.write(b'Content-Length: 100\r\n\r\n{"jsonrpc"')
    s3.close()
    s4, f4 = sock_client(path)
    assert rpc(f4, {"jsonrpc": "2.0", "id": 7, "method": "distilld/ping"})["result"]["pong"]
    s4.close()
    assert proc.poll() is None


def test_sessions_frame_independently(listening):
    path, _ = listening
    s, f = sock_client(path)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "distilld/ping"}).encode()
    f.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    header = f.readline()
    assert header.startswith(b"Content-Length: ")
    s.close()
    s2, f2 = sock_client(path)
    assert rpc(f2, {"jsonrpc": "2.0", "id": 2, "method": "distilld/ping"})["result"]["pong"]
    s2.close()


def test_second_daemon_on_a_live_socket_refuses(listening, distilld):
    path, _ = listening
    p = subprocess.run([distilld, "--listen", path], capture_output=True, timeout=10)
    assert p.returncode != 0
    assert b"already serving" in p.stderr


def test_connect_autostarts_shares_state_and_idles_out(distilld, tmp_runtime):
    sock = os.path.join(tmp_runtime, "distilld", "distilld.sock")
    env = dict(os.environ)
    msgs = b'{"jsonrpc":"2.0","id":1,"method":"distilld/status"}\n'
    p = subprocess.run([distilld, "connect", "--idle-timeout", "2"], input=msgs, capture_output=True, timeout=30, env=env)
    assert p.returncode == 0, p.stderr
    first = json.loads(p.stdout.splitlines()[0])
    pid = first["result"]["pid"]
    mode = stat.S_IMODE(os.stat(os.path.dirname(sock)).st_mode)
    assert mode == 0o700
    # A second connect reaches the same daemon.
    p2 = subprocess.run([distilld, "connect"], input=msgs, capture_output=True, timeout=30, env=env)
    assert json.loads(p2.stdout.splitlines()[0])["result"]["pid"] == pid
    # With no client for the idle timeout, the auto-started daemon exits and removes its socket.
    assert wait_for(lambda: not os.path.exists(sock), timeout=15)
    assert wait_for(lambda: not os.path.exists(f"/proc/{pid}"), timeout=5)


def test_refuses_socket_directory_owned_by_someone_else(distilld, tmp_runtime):
    if os.getuid() != 0:
        pytest.skip("needs root to create a directory owned by another user")
    d = os.path.join(tmp_runtime, "distilld")
    os.mkdir(d, 0o700)
    os.chown(d, 65534, 65534)
    p = subprocess.run([distilld, "--shared"], capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    assert p.returncode != 0
    assert b"owned by uid 65534" in p.stderr
    p = subprocess.run([distilld, "connect"], capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    assert p.returncode != 0


def test_refuses_socket_directory_open_to_others(distilld, tmp_runtime):
    d = os.path.join(tmp_runtime, "distilld")
    os.mkdir(d)
    os.chmod(d, 0o755)
    p = subprocess.run([distilld, "--shared"], capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    assert p.returncode != 0
    assert b"accessible to other users" in p.stderr


def test_connect_to_a_daemon_that_does_not_answer_is_not_a_usage_error(distilld, tmp_path):
    """Nobody answering is a fact about the machine, not a mistake on the command line: exit 1
    and a sentence, not argument-parser's usage text and its exit code 64."""
    path = str(tmp_path / "nobody.sock")
    p = subprocess.run([distilld, "connect", "--no-start", "--socket", path], capture_output=True, timeout=30)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert b"no daemon answers on " + path.encode() in p.stderr
    assert b"USAGE" not in p.stderr and b"Usage" not in p.stderr
