"""Shared fixtures: the built daemon, raw byte-level sessions, and the Python client."""

import json
import os
import subprocess
import sys
import tempfile
import time

import pytest
from hypothesis import settings

# CI runs the property tests on a fixed sequence of examples, so a landing is never
# decided by the luck of the draw; locally they explore afresh each run.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "Clients", "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def daemon_path() -> str:
    path = os.environ.get("DISTILLD") or os.path.join(ROOT, ".build", "release", "distilld")
    if not os.path.exists(path):
        pytest.fail(f"distilld binary not found at {path}; run `make release` first")
    return path


@pytest.fixture(scope="session")
def distilld() -> str:
    return daemon_path()


class FramedReader:
    """Reads the daemon's replies, in either framing, from a subclass's `_read_chunk`."""

    buffer = b""

    def _fill(self):
        chunk = self._read_chunk()
        if not chunk:
            raise EOFError("daemon closed the connection")
        self.buffer += chunk

    def read_line(self):
        while b"\n" not in self.buffer:
            self._fill()
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def read_framed(self, raw_header=False):
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        header, _, rest = self.buffer.partition(b"\r\n\r\n")
        assert header.startswith(b"Content-Length: "), header
        n = int(header[len(b"Content-Length: "):])
        while len(rest) < n:
            self._fill()
            header, _, rest = self.buffer.partition(b"\r\n\r\n")
        body, self.buffer = rest[:n], rest[n:]
        return (header, json.loads(body)) if raw_header else json.loads(body)


class Raw(FramedReader):
    """A daemon on stdio driven byte by byte, for framing and protocol edge cases."""

    def __init__(self, binary, args=(), env=None):
        self.proc = subprocess.Popen([binary, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, bufsize=0, env=env)
        self.buffer = b""

    def write(self, data: bytes):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send_line(self, obj):
        self.write((obj if isinstance(obj, str) else json.dumps(obj)).encode() + b"\n")

    def send_framed(self, obj):
        body = (obj if isinstance(obj, str) else json.dumps(obj)).encode()
        self.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def _read_chunk(self):
        out = self.proc.stdout
        return out.read1(65536) if hasattr(out, "read1") else os.read(out.fileno(), 65536)

    def close(self, timeout=20):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def _raw_sessions(distilld):
    """Yields a factory of raw sessions and kills whatever is left running afterwards."""
    sessions = []

    def make(*args, env=None):
        r = Raw(distilld, args, env)
        sessions.append(r)
        return r

    yield make
    for r in sessions:
        if r.proc.poll() is None:
            r.proc.kill()
            r.proc.wait()


@pytest.fixture
def raw(distilld):
    yield from _raw_sessions(distilld)


@pytest.fixture
def client(distilld):
    from distilld import Client

    c = Client.start(distilld, stderr=subprocess.DEVNULL)
    yield c
    c.close()


@pytest.fixture
def listening(distilld, tmp_path):
    """A daemon serving `--listen` on a socket in tmp_path: yields (socket path, process)."""
    path = str(tmp_path / "d.sock")
    proc = subprocess.Popen([distilld, "--listen", path], stderr=subprocess.DEVNULL)
    assert wait_for(lambda: os.path.exists(path))
    yield path, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


@pytest.fixture
def tmp_runtime(monkeypatch):
    """A private XDG_RUNTIME_DIR so socket tests never touch a real shared daemon."""
    d = tempfile.mkdtemp(prefix="distilld-rt-")
    os.chmod(d, 0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", d)
    yield d


def wait_for(predicate, timeout=10.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@pytest.fixture
def checked(client):
    """The Python client with every params and result validated against Protocol/schemas."""
    from schema import CheckedClient

    return CheckedClient(client)


@pytest.fixture(scope="module")
def raw_factory(distilld):
    """Like `raw`, for hypothesis tests (function-scoped fixtures are not reset between examples)."""
    yield from _raw_sessions(distilld)


SMOLLM2 = os.environ.get("DISTILLD_SMOLLM2_GGUF") or os.path.join(
    ROOT, ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.fixture(scope="session")
def smollm2_reference():
    """SmolLM2-135M-Instruct as transformers reads the same GGUF file (`make models`): its
    tokenizer and its model dequantised to float32, eager attention, in eval mode.

    The reference every SmolLM2 test checks against; loading it takes about a minute, so it is
    loaded once for the whole session, not once per module. Tests only read it: its weights are
    left as transformers made them (test_gguf takes them as read-only arrays)."""
    if not os.path.exists(SMOLLM2):
        pytest.fail(f"{SMOLLM2} not found; run `make models`")
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    import transformers

    directory, name = os.path.dirname(SMOLLM2), os.path.basename(SMOLLM2)
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory, gguf_file=name)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        directory, gguf_file=name, dtype=torch.float32, attn_implementation="eager").eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return tokenizer, model
