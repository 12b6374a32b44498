"""A socket daemon with a workspace for the bad-input catalogue and the soak test.

`CatalogueDaemon` starts `distilld --listen SOCK --workspace FILE`, opens line-framed
connections, and takes a snapshot of what a bad request must leave alone: `teacher/list`,
`dataset/list` and the workspace file's bytes."""

import json
import os
import socket
import subprocess

from conftest import FramedReader, wait_for


class Conn(FramedReader):
    """One line-framed (or raw) connection to the daemon's socket, with a read deadline."""

    def __init__(self, path, timeout=15.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buffer = b""

    def send(self, data: bytes):
        self.sock.sendall(data)

    def send_obj(self, obj):
        self.send(json.dumps(obj).encode() + b"\n")

    def _read_chunk(self):
        return self.sock.recv(1 << 20)

    def call(self, method, params=None, id="q"):
        msg = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            msg["params"] = params
        self.send_obj(msg)
        while True:
            m = self.read_line()
            if isinstance(m, dict) and m.get("id") == id:
                return m

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class CatalogueDaemon:
    def __init__(self, binary, directory, *extra):
        self.dir = directory
        self.sock_path = os.path.join(directory, "d.sock")
        self.workspace = os.path.join(directory, "ws", "workspace.json")
        os.makedirs(os.path.dirname(self.workspace), exist_ok=True)
        self.stderr = open(os.path.join(directory, "daemon.log"), "wb")
        self.proc = subprocess.Popen([binary, "--listen", self.sock_path, "--workspace", self.workspace, *extra],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr)
        assert wait_for(self._answers, timeout=20), "daemon did not start listening"

    def _answers(self):
        try:
            c = Conn(self.sock_path, timeout=2)
        except OSError:
            return False
        c.close()
        return True

    def connect(self, timeout=15.0):
        return Conn(self.sock_path, timeout)

    def call(self, method, params=None):
        c = self.connect()
        try:
            return c.call(method, params)
        finally:
            c.close()

    def workspace_bytes(self):
        try:
            with open(self.workspace, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def state(self):
        """What no refused request may change: both registries and the workspace file."""
        return (self.call("teacher/list")["result"], self.call("dataset/list")["result"], self.workspace_bytes())

    def alive(self):
        r = self.call("distilld/ping", {"payload": "alive"})
        return r.get("result", {}).get("payload") == "alive"

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS line")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
