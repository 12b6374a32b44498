"""JSON-RPC 2.0 client for distilld over a subprocess's stdio or a Unix socket."""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
from concurrent.futures import Future
from typing import Any, Callable, Optional

try:  # numpy is optional
    import numpy as _np
except ImportError:  # pragma: no cover - exercised only without numpy
    _np = None

_DTYPES = {"float32": "<f4", "float16": "<f2", "float64": "<f8", "int32": "<i4", "int64": "<i8"}


class RPCError(Exception):
    """An error reply: `code`, `message` and `data` as the daemon sent them."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data


def default_socket_path() -> str:
    """The per-user socket that `distilld connect` and `distilld --shared` use."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "distilld", "distilld.sock")
    return f"/tmp/distilld-{os.getuid()}/distilld.sock"


def check_socket_owner(path: str) -> None:
    """Raises PermissionError unless `path` can only be this user's daemon: its directory
    is owned by this user and writable by no one else (the per-user default directory
    must be private: mode 0700), and the socket, if present, is a socket this user owns.
    The same rules as `distilld connect`; without them another user who created the
    directory first would receive our requests."""
    uid = os.getuid()
    directory = os.path.dirname(path) or "."
    try:
        d = os.stat(directory) if path != default_socket_path() else os.lstat(directory)
    except FileNotFoundError:
        return
    private = path == default_socket_path()
    if not stat.S_ISDIR(d.st_mode):
        raise PermissionError(f"refusing to connect to {path}: {directory} is not a directory")
    if d.st_uid != uid:
        raise PermissionError(f"refusing to connect to {path}: {directory} is owned by uid {d.st_uid}, not {uid}")
    if d.st_mode & (0o077 if private else 0o022):
        raise PermissionError(f"refusing to connect to {path}: {directory} is "
                              f"{'accessible' if private else 'writable'} to other users "
                              f"(mode {stat.S_IMODE(d.st_mode):o})")
    try:
        s = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(s.st_mode):
        raise PermissionError(f"refusing to connect to {path}: it is not a socket")
    if s.st_uid != uid:
        raise PermissionError(f"refusing to connect to {path}: it is owned by uid {s.st_uid}, not {uid}")


def encode_array(array: Any) -> dict:
    """A numpy array in distilld's binary form: little-endian values, base64."""
    if _np is None:
        raise RuntimeError("encode_array needs numpy")
    a = _np.asarray(array)
    if a.dtype == _np.float64:
        name = "float64"
    elif a.dtype == _np.float16:
        name = "float16"
    elif a.dtype.kind == "i":
        name = "int64" if a.dtype.itemsize == 8 else "int32"
    elif a.dtype.kind == "b":
        name, a = "int32", a.astype("<i4")
    else:
        name, a = "float32", a.astype("<f4", copy=False)
    a = _np.ascontiguousarray(a.astype(_DTYPES[name], copy=False))
    return {"dtype": name, "shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}


def decode_array(value: dict) -> Any:
    """The inverse of `encode_array`."""
    if _np is None:
        raise RuntimeError("decode_array needs numpy")
    raw = base64.b64decode(value["data"])
    return _np.frombuffer(raw, dtype=_DTYPES[value["dtype"]]).reshape(value["shape"])


def _prepare(value: Any) -> Any:
    """Replaces numpy arrays (at any depth) with the binary form."""
    if _np is not None and isinstance(value, _np.ndarray):
        return encode_array(value)
    if isinstance(value, dict):
        return {k: _prepare(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_prepare(v) for v in value]
    if _np is not None and isinstance(value, _np.generic):
        return value.item()
    return value


class Client:
    """One connection to distilld. Thread-safe; calls may overlap."""

    def __init__(self, reader, writer, framing: str = "lines", process: Optional[subprocess.Popen] = None,
                 sock: Optional[socket.socket] = None):
        if framing not in ("lines", "content-length"):
            raise ValueError("framing must be 'lines' or 'content-length'")
        self._reader = reader
        self._writer = writer
        self._framing = framing
        self._process = process
        self._socket = sock
        self._ids = itertools.count(1)
        self._pending: dict = {}
        self._progress: dict = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self.notifications: list = []
        self.on_notification: Optional[Callable[[str, Any], None]] = None
        self._closed = False
        self._thread = threading.Thread(target=self._read_loop, daemon=True)
        self._thread.start()

    # -- construction ---------------------------------------------------------

    @classmethod
    def start(cls, binary: Optional[str] = None, args: Optional[list] = None, framing: str = "lines",
              stderr: Any = None) -> "Client":
        """Starts a private daemon on stdio."""
        exe = binary or os.environ.get("DISTILLD") or shutil.which("distilld") or "distilld"
        proc = subprocess.Popen([exe, *(args or [])], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=stderr if stderr is not None else sys.stderr, bufsize=0)
        return cls(proc.stdout, proc.stdin, framing, process=proc)

    @classmethod
    def connect(cls, socket_path: Optional[str] = None, binary: Optional[str] = None,
                autostart: bool = True) -> "Client":
        """Connects to the shared daemon; starts one through `distilld connect` when none answers."""
        path = socket_path or default_socket_path()
        check_socket_owner(path)
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            f = s.makefile("rwb", buffering=0)
            return cls(f, f, "lines", sock=s)
        except OSError:
            if not autostart:
                raise
        exe = binary or os.environ.get("DISTILLD") or shutil.which("distilld") or "distilld"
        args = ["connect"] + (["--socket", socket_path] if socket_path else [])
        return cls.start(exe, args)

    # -- calls ----------------------------------------------------------------

    def call_async(self, method: str, params: Any = None, progress: Optional[Callable[[dict], None]] = None,
                   **kwargs) -> Future:
        """Sends a request; the Future resolves to its result or raises RPCError.
        The request id is `future.request_id` (for `cancel`)."""
        if params is None:
            params = kwargs if kwargs else None
        elif kwargs:
            raise TypeError("pass params either as a dict or as keywords, not both")
        request_id = next(self._ids)
        fut: Future = Future()
        fut.request_id = request_id  # type: ignore[attr-defined]
        params = _prepare(params)
        if progress is not None:
            params = dict(params or {})
            params["workDoneToken"] = f"progress-{request_id}"
            with self._lock:
                self._progress[params["workDoneToken"]] = progress
        with self._lock:
            self._pending[request_id] = fut
        message = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self._send(message)
        return fut

    def call(self, method: str, params: Any = None, timeout: Optional[float] = None, **kwargs) -> Any:
        """Sends a request and waits for its result; raises RPCError on an error reply."""
        return self.call_async(method, params, **kwargs).result(timeout)

    def notify(self, method: str, params: Any = None, **kwargs) -> None:
        message = {"jsonrpc": "2.0", "method": method}
        p = params if params is not None else (kwargs or None)
        if p is not None:
            message["params"] = _prepare(p)
        self._send(message)

    def cancel(self, future_or_id: Any) -> None:
        request_id = getattr(future_or_id, "request_id", future_or_id)
        self.notify("$/cancelRequest", {"id": request_id})

    def close(self, timeout: float = 10.0) -> Optional[int]:
        """Shuts the daemon session down politely and returns a private daemon's exit code."""
        if self._closed:
            return self._process.returncode if self._process else None
        try:
            self.call("shutdown", timeout=timeout)
            self.notify("exit")
        except Exception:
            pass
        self._closed = True
        code = None
        if self._process is not None:
            try:
                self._process.stdin.close()
            except OSError:
                pass
            try:
                code = self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                code = self._process.wait()
        if self._socket is not None:
            try:
                self._socket.close()
            except OSError:
                pass
        return code

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- wire -----------------------------------------------------------------

    def _send(self, message: Any) -> None:
        body = json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8")
        if self._framing == "lines":
            data = body + b"\n"
        else:
            data = b"Content-Length: %d\r\n\r\n" % len(body) + body
        with self._write_lock:
            self._writer.write(data)
            if hasattr(self._writer, "flush"):
                self._writer.flush()

    def _read_message(self) -> Optional[Any]:
        if self._framing == "lines":
            while True:
                line = self._reader.readline()
                if not line:
                    return None
                if line.strip():
                    return json.loads(line)
        length = None
        while True:
            line = self._reader.readline()
            if not line:
                return None
            line = line.strip()
            if not line:
                if length is not None:
                    break
                continue
            name, _, value = line.decode("ascii").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        body = b""
        while len(body) < length:
            chunk = self._reader.read(length - len(body))
            if not chunk:
                return None
            body += chunk
        return json.loads(body)

    def _read_loop(self) -> None:
        while True:
            try:
                message = self._read_message()
            except (OSError, ValueError):
                message = None
            if message is None:
                break
            for m in message if isinstance(message, list) else [message]:
                self._dispatch(m)
        with self._lock:
            pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("distilld closed the connection"))

    def _dispatch(self, m: dict) -> None:
        if "method" in m:
            params = m.get("params")
            if m["method"] == "$/progress":
                with self._lock:
                    handler = self._progress.get(params.get("token"))
                if handler is not None:
                    handler(params.get("value"))
            self.notifications.append(m)
            if self.on_notification is not None:
                self.on_notification(m["method"], params)
            return
        with self._lock:
            fut = self._pending.pop(m.get("id"), None)
        if fut is None:
            return
        if "error" in m:
            e = m["error"]
            fut.set_exception(RPCError(e.get("code"), e.get("message"), e.get("data")))
        else:
            fut.set_result(m.get("result"))
