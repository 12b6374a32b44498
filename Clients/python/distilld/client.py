"""JSON-RPC 2.0 client for distilld over a subprocess's stdio or a Unix socket."""

from __future__ import annotations

import base64
import collections
import io
import itertools
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import traceback
from concurrent.futures import Future
from typing import Any, Callable, Optional

try:  # numpy is optional
    import numpy as _np
except ImportError:  # pragma: no cover - exercised only without numpy
    _np = None

_DTYPES = {"float32": "<f4", "float16": "<f2", "float64": "<f8", "int32": "<i4", "int64": "<i8",
           "bfloat16": "<u2"}  # bfloat16 travels as its raw 16 bits


_READ_BUFFER = 1 << 16


class RPCError(Exception):
    """An error reply: `code`, `message` and `data` as the daemon sent them."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data


class Cancelled(RPCError):
    """A `-32800` reply: the request was cancelled. A teacher-forced `distill/score` cancelled after
    some of its examples were scored gives their result as `partial` (a whole distill/score result
    over the first `examples_done` of `examples`, itself marked with `"partial": {"examplesDone",
    "examples"}` so that it cannot be taken for a whole one); otherwise `partial` is None."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(code, message, data)
        detail = data if isinstance(data, dict) else {}
        self.partial: Optional[dict] = detail.get("partial")
        self.examples_done: Optional[int] = detail.get("examplesDone")
        self.examples: Optional[int] = detail.get("examples")


def _error(e: dict) -> RPCError:
    """The exception for an error reply: `Cancelled` for -32800, else `RPCError`."""
    kind = Cancelled if e.get("code") == -32800 else RPCError
    return kind(e.get("code"), e.get("message"), e.get("data"))


class DaemonNotFound(FileNotFoundError):
    """The distilld executable could not be found (see `Client.start`)."""


def _find_daemon(binary: Optional[str] = None) -> str:
    """The distilld to run: `binary`, else $DISTILLD, else `distilld` on PATH."""
    for origin, value in (("binary", binary), ("DISTILLD", os.environ.get("DISTILLD"))):
        if value:
            found = shutil.which(value)
            if found is None:
                raise DaemonNotFound(f"{origin}={value} is not an executable distilld: point it at the distilld "
                                     "binary, or put the directory holding distilld on PATH")
            return found
    found = shutil.which("distilld")
    if found is None:
        raise DaemonNotFound("cannot find distilld: put the directory holding it on PATH, set "
                             "DISTILLD=/path/to/distilld, or pass binary=...")
    return found


def default_socket_path() -> str:
    """The per-user socket that `distilld connect` and `distilld --shared` use."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "distilld", "distilld.sock")
    return f"/tmp/distilld-{os.getuid()}/distilld.sock"


def _is_torch_tensor(value: Any) -> bool:
    """True for a torch tensor (or Parameter), told by its type's module so torch is never imported here."""
    module = type(value).__module__ or ""
    return (module == "torch" or module.startswith("torch.")) and hasattr(value, "detach") and hasattr(value, "numpy")


def _torch_to_numpy(tensor: Any) -> tuple:
    """A torch tensor's values on the CPU as a numpy array, and whether they are bfloat16 bits.

    numpy has no bfloat16, so a bfloat16 tensor comes back as its raw bits (int16)."""
    t = tensor.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if str(t.dtype) == "torch.bfloat16":
        torch = sys.modules[type(tensor).__module__.split(".")[0]]
        return t.contiguous().view(torch.int16).numpy(), True
    if hasattr(t, "resolve_neg"):  # a lazily negated view has no numpy form until resolved
        t = t.resolve_neg()
    return t.numpy(), False


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
    """A numpy array or torch tensor in distilld's binary form: little-endian values, base64.

    float64, float16, int32 and int64 keep their dtype; bfloat16 (a torch tensor, or a numpy
    array of ml_dtypes' bfloat16) is sent as `bfloat16` from its raw bits; booleans go as
    int32 and everything else as float32."""
    if _np is None:
        raise RuntimeError("encode_array needs numpy")
    bfloat16 = False
    if _is_torch_tensor(array):
        array, bfloat16 = _torch_to_numpy(array)
    a = _np.asarray(array)
    if bfloat16 or a.dtype.name == "bfloat16":
        bits = _np.ascontiguousarray(a).view(_np.uint16).astype("<u2", copy=False)
        return {"dtype": "bfloat16", "shape": list(a.shape), "data": base64.b64encode(bits.tobytes()).decode("ascii")}
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
    """The inverse of `encode_array`, as a numpy array; bfloat16 values come back exactly as float32."""
    if _np is None:
        raise RuntimeError("decode_array needs numpy")
    raw = base64.b64decode(value["data"])
    a = _np.frombuffer(raw, dtype=_DTYPES[value["dtype"]])
    if value["dtype"] == "bfloat16":
        a = (a.astype(_np.uint32) << 16).view(_np.float32)
    return a.reshape(value["shape"])


def _prepare(value: Any) -> Any:
    """Replaces numpy arrays and torch tensors (at any depth) with the binary form."""
    if _np is not None and (isinstance(value, _np.ndarray) or _is_torch_tensor(value)):
        return encode_array(value)
    if isinstance(value, dict):
        return {k: _prepare(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_prepare(v) for v in value]
    if _np is not None and isinstance(value, _np.generic):
        return value.item()
    return value


class Client:
    """One connection to distilld. Thread-safe; calls may overlap.

    `notifications` holds the most recent notifications from the daemon, at most
    `keep_notifications` (default 1000; older ones are dropped). `$/progress` for a
    request made with a `progress` callback goes to that callback and is not kept there.
    `on_notification(method, params)`, when set, sees every notification as it arrives.
    Callbacks run on the client's reading thread."""

    def __init__(self, reader, writer, framing: str = "lines", process: Optional[subprocess.Popen] = None,
                 sock: Optional[socket.socket] = None, keep_notifications: int = 1000):
        if framing not in ("lines", "content-length"):
            raise ValueError("framing must be 'lines' or 'content-length'")
        self._reader = reader
        self._writer = writer
        self._framing = framing
        self._process = process
        self._socket = sock
        self._ids = itertools.count(1)
        self._pending: dict = {}
        self._reading = True  # until the reading thread ends; then calls fail at once
        self._progress: dict = {}  # workDoneToken -> callback, until its end is delivered
        self._progress_tokens: dict = {}  # request id -> its workDoneToken
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self.notifications: collections.deque = collections.deque(maxlen=keep_notifications)
        self.on_notification: Optional[Callable[[str, Any], None]] = None
        self._closed = False
        self._thread = threading.Thread(target=self._read_loop, daemon=True)
        self._thread.start()

    # -- construction ---------------------------------------------------------

    @classmethod
    def start(cls, binary: Optional[str] = None, args: Optional[list] = None, framing: str = "lines",
              stderr: Any = None, keep_notifications: int = 1000) -> "Client":
        """Starts a private daemon on stdio: `binary`, else $DISTILLD, else `distilld` on PATH
        (DaemonNotFound, a FileNotFoundError, when there is none)."""
        exe = _find_daemon(binary)
        proc = subprocess.Popen([exe, *(args or [])], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=stderr if stderr is not None else sys.stderr, bufsize=0)
        # Requests go out unbuffered; replies are read through a buffer, since readline on a raw
        # pipe reads one byte per system call (a 20 MB reply, a `full` log-softmax, took seconds).
        return cls(io.BufferedReader(proc.stdout, _READ_BUFFER), proc.stdin, framing, process=proc,
                   keep_notifications=keep_notifications)

    @classmethod
    def connect(cls, socket_path: Optional[str] = None, binary: Optional[str] = None,
                autostart: bool = True) -> "Client":
        """Connects to the shared daemon; starts one through `distilld connect` when none answers."""
        path = socket_path or default_socket_path()
        check_socket_owner(path)
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            # Buffered for reading (see `start`), unbuffered for writing.
            return cls(s.makefile("rb", buffering=_READ_BUFFER), s.makefile("wb", buffering=0), "lines", sock=s)
        except OSError:
            if not autostart:
                raise
        exe = _find_daemon(binary)
        args = ["connect"] + (["--socket", socket_path] if socket_path else [])
        return cls.start(exe, args)

    # -- calls ----------------------------------------------------------------

    def call_async(self, method: str, params: Any = None, progress: Optional[Callable[[dict], None]] = None,
                   **kwargs) -> Future:
        """Sends a request; the Future resolves to its result or raises RPCError.
        The request id is `future.request_id` (for `cancel`).

        `progress(value)` is called with each `$/progress` value of this request (`begin`,
        `report`s, `end`), and always ends with exactly one `end` before the Future resolves:
        a request too quick for the daemon to report on (under `--progress-after`) gets just
        `{"kind": "end", "message": "done"}` (or `"failed"`, `"cancelled"`), made by the client."""
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
                self._progress_tokens[request_id] = params["workDoneToken"]
        with self._lock:
            if not self._reading:  # nothing would ever read its reply
                raise ConnectionError("distilld closed the connection")
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

    # -- models (model/*) ------------------------------------------------------
    # Thin wrappers over `call` for the language models the daemon runs. Parameters left
    # as None are not sent, so the daemon's defaults apply (Protocol/README.md, model/*);
    # errors are RPCError as for any call.

    def load_model(self, name: str, path: Optional[str] = None, *, format: Optional[str] = None,
                   tokenizer: Optional[str] = None, build: Optional[dict] = None, replace: bool = False,
                   progress: Optional[Callable[[dict], None]] = None, timeout: Optional[float] = None) -> dict:
        """`model/load`: a `.gguf` file, a Hugging Face directory or an ARPA file at `path`, or an
        n-gram built from a loaded dataset, `build={"dataset": NAME, "order": 3, "text": "simplified"}`.
        `tokenizer` is a tokenizer.json to use instead of the model's own. Returns the modelInfo.
        Relative paths are made absolute here, since the daemon's working directory may differ."""
        params: dict = {"name": name}
        if path is not None:
            params["path"] = os.path.abspath(path)
        if format is not None:
            params["format"] = format
        if tokenizer is not None:
            params["options"] = {"tokenizer": os.path.abspath(tokenizer)}
        if build is not None:
            params["build"] = build
        if replace:
            params["replace"] = True
        return self.call_async("model/load", params, progress=progress).result(timeout)

    def tokenize(self, model: str, text: str, add_special: Optional[bool] = None,
                 timeout: Optional[float] = None) -> dict:
        """`model/tokenize`: `{"tokens": [ids], "pieces": [strings]}`."""
        return self.call("model/tokenize", _given(model=model, text=text, addSpecial=add_special), timeout)

    def detokenize(self, model: str, tokens: Any, skip_special: Optional[bool] = None,
                   timeout: Optional[float] = None) -> str:
        """`model/detokenize`: the text of `tokens` (a list or a 1-d integer array)."""
        reply = self.call("model/detokenize", _given(model=model, tokens=_ids(tokens), skipSpecial=skip_special),
                          timeout)
        return reply["text"]

    def logprobs(self, model: str, texts: Any = None, *, tokens: Any = None, topk: Optional[int] = None,
                 full: Optional[bool] = None, add_special: Optional[bool] = None,
                 timeout: Optional[float] = None) -> dict:
        """`model/logprobs` on one text (a str), several texts (a list of str, run as one batch), or
        `tokens` (one id sequence or a list of them; integer arrays too). Returns the reply; with
        `full=True` each sequence's `full` is decoded into a [T, V] float32 numpy array
        (log-probabilities in nats)."""
        if (texts is None) == (tokens is None):
            raise TypeError("logprobs needs either texts or tokens")
        params = _given(model=model, topk=topk, full=full, addSpecial=add_special)
        if tokens is not None:
            params["tokens"] = _ids(tokens)
        elif isinstance(texts, str):
            params["text"] = texts
        else:
            params["texts"] = list(texts)
        reply = self.call("model/logprobs", params, timeout)
        for sequence in reply.get("sequences", []):
            if isinstance(sequence.get("full"), dict):
                sequence["full"] = decode_array(sequence["full"])
        return reply

    def generate(self, model: str, prompt: Optional[str] = None, *, tokens: Any = None,
                 max_tokens: Optional[int] = None, temperature: Optional[float] = None,
                 top_k: Optional[int] = None, top_p: Optional[float] = None, seed: Optional[int] = None,
                 n: Optional[int] = None, stop: Optional[list] = None, add_special: Optional[bool] = None,
                 timeout: Optional[float] = None) -> dict:
        """`model/generate` from `prompt` (text) or `tokens` (ids): `{"model", "promptTokens",
        "completions": [{"tokens", "text", "logprob", "finishReason"}]}`. `temperature=0` is greedy;
        the same `seed` gives the same completions."""
        if (prompt is None) == (tokens is None):
            raise TypeError("generate needs either prompt or tokens")
        params = _given(model=model, prompt=prompt, maxTokens=max_tokens, temperature=temperature, topK=top_k,
                        topP=top_p, seed=seed, n=n, addSpecial=add_special)
        if tokens is not None:
            params["tokens"] = _ids(tokens)
        if stop is not None:
            params["stop"] = [stop] if isinstance(stop, str) else list(stop)
        return self.call("model/generate", params, timeout)

    # -- distillation on text (#13) ---------------------------------------------
    # The analyses with loaded models reading a loaded paired dataset (full context, simplified
    # context, target), and the teacher targets for training. Parameters left as None are not
    # sent; `progress` is as in `call_async`. A cancelled teacher-forced score raises `Cancelled`
    # with the examples scored so far in `.partial`.

    def score_text(self, teacher_model: str, student_models: Any, dataset: str, *, loss: Any = None,
                   prompt: Any = None, worst: Optional[int] = None, per_example: Optional[bool] = None,
                   conventions: Optional[list] = None, progress: Optional[Callable[[dict], None]] = None,
                   timeout: Optional[float] = None) -> dict:
        """Teacher-forced `distill/score`: the teacher model reads each example's full context and
        target, each student model its simplified context and the target, and the loss is taken at
        every target token. `student_models` is a model name, a list of names (each student named
        as its model) or `{student name: model name}`; `loss` a loss name or a loss object; `prompt`
        a separator string or a prompt object (`{"separator": ...}`)."""
        params = _given(dataset=dataset, worst=worst, perExample=per_example, conventions=conventions)
        params["teacher"] = {"model": teacher_model}
        params["students"] = {name: {"model": model} for name, model in _named(student_models).items()}
        if loss is not None:
            params["loss"] = {"name": loss} if isinstance(loss, str) else loss
        if prompt is not None:
            params["prompt"] = _prompt(prompt)
        return self.call_async("distill/score", params, progress=progress).result(timeout)

    def diagnose_behaviour(self, dataset: str, student: str, *, teacher: Optional[str] = None,
                           separator: Optional[str] = None, max_examples: Optional[int] = None,
                           progress: Optional[Callable[[dict], None]] = None,
                           timeout: Optional[float] = None) -> dict:
        """`distill/diagnose` from behaviour: which of the dataset's contexts (full or simplified)
        the student model learnt from, judged by running it (and `teacher`, whose context gap picks
        the deciding examples) on both. Returns the whole diagnose result; the judgement is its
        `behaviour`."""
        behaviour = _given(student=student, teacher=teacher, separator=separator)
        params = _given(dataset=dataset, maxExamples=max_examples)
        params["behaviour"] = behaviour
        return self.call_async("distill/diagnose", params, progress=progress).result(timeout)

    def explain_text(self, teacher_model: str, student_models: Any, text: str, *, position: Optional[int] = None,
                     temperature: Optional[float] = None, temperatures: Optional[list] = None,
                     top_k: Optional[int] = None, charts: Optional[bool] = None, charts_dir: Optional[str] = None,
                     add_special: Optional[bool] = None, progress: Optional[Callable[[dict], None]] = None,
                     timeout: Optional[float] = None) -> dict:
        """`distill/explain` with models run on one text: the students' loss at each token with the
        tokens as text (`tokens`, `charts.tokens`), and at `position` the contributions, the
        temperature sweep and the gradient labelled by the tokenizer. `student_models` as in
        `score_text`."""
        def reading(model: str) -> dict:
            return _given(model=model, text=text, addSpecial=add_special)

        params = _given(example=0, position=position, temperature=temperature, temperatures=temperatures,
                        topK=top_k, charts=charts)
        if charts_dir is not None:
            params["chartsDir"] = os.path.abspath(charts_dir)
        params["teacher"] = reading(teacher_model)
        params["students"] = {name: reading(model) for name, model in _named(student_models).items()}
        return self.call_async("distill/explain", params, progress=progress).result(timeout)

    def generate_targets(self, model: str, dataset: str, *, context: Optional[str] = None, prompt: Any = None,
                         limit: Optional[int] = None, n: Optional[int] = None, max_tokens: Optional[int] = None,
                         temperature: Optional[float] = None, top_k: Optional[int] = None,
                         top_p: Optional[float] = None, seed: Optional[int] = None, stop: Any = None,
                         progress: Optional[Callable[[dict], None]] = None, timeout: Optional[float] = None) -> dict:
        """`teacher/generate`: `n` samples per example from the teacher reading each example's
        `context` ("full", the default, or "simplified"), each with its sequence log-probability:
        the candidates of sequence-level distillation (`distill/sequence`)."""
        params = _given(model=model, dataset=dataset, context=context, limit=limit, n=n, maxTokens=max_tokens,
                        temperature=temperature, topK=top_k, topP=top_p, seed=seed)
        if prompt is not None:
            params["prompt"] = _prompt(prompt)
        if stop is not None:
            params["stop"] = [stop] if isinstance(stop, str) else list(stop)
        return self.call_async("teacher/generate", params, progress=progress).result(timeout)

    def export_targets(self, model: str, dataset: str, path: str, *, k: Optional[int] = None,
                       context: Optional[str] = None, prompt: Any = None, overwrite: Optional[bool] = None,
                       progress: Optional[Callable[[dict], None]] = None, timeout: Optional[float] = None) -> dict:
        """`teacher/export`: the teacher's top-`k` log-probabilities at every target token of the
        dataset, written to the safetensors file `path` (made absolute here). A cancelled export
        leaves nothing behind."""
        params = _given(model=model, dataset=dataset, path=os.path.abspath(path), k=k, context=context,
                        overwrite=overwrite)
        if prompt is not None:
            params["prompt"] = _prompt(prompt)
        return self.call_async("teacher/export", params, progress=progress).result(timeout)

    def audit_topk(self, teacher: Any, student: Any, *, ks: Optional[list] = None,
                   temperature: Optional[float] = None, bound: Optional[float] = None,
                   progress: Optional[Callable[[dict], None]] = None, timeout: Optional[float] = None) -> dict:
        """`distill/audit`: the KL error of truncating the dense `teacher` to its top k under each
        tail policy, for each k of `ks`, and the smallest k within `bound`. `teacher` and `student`
        are model references as in `distill/score` (a loaded teacher's name, `{"path": ...}`,
        `{"model": NAME, "text": ...}`, inline outputs, arrays...)."""
        params = _given(teacher=teacher, student=student, ks=ks, temperature=temperature, bound=bound)
        return self.call_async("distill/audit", params, progress=progress).result(timeout)

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
        try:
            while True:
                try:
                    message = self._read_message()
                except (OSError, ValueError):
                    message = None
                if message is None:
                    break
                for m in message if isinstance(message, list) else [message]:
                    self._dispatch(m)
        finally:
            # However the loop ends (the pipe closed, or a callback raised), no caller waits forever.
            self._fail_pending()

    def _fail_pending(self) -> None:
        with self._lock:
            self._reading = False
            pending, self._pending = self._pending, {}
        for request_id, fut in pending.items():
            self._finish_progress(request_id, "failed")
            if not fut.done():
                fut.set_exception(ConnectionError("distilld closed the connection"))

    def _dispatch(self, m: dict) -> None:
        if "method" in m:
            params = m.get("params")
            delivered = False
            if m["method"] == "$/progress" and isinstance(params, dict):
                delivered = self._deliver_progress(params.get("token"), params.get("value"))
            if not delivered:
                self.notifications.append(m)
            if self.on_notification is not None:
                _run_callback(self.on_notification, m["method"], params)
            return
        with self._lock:
            fut = self._pending.pop(m.get("id"), None)
        if fut is None:
            return
        if "error" in m:
            e = m["error"]
            self._finish_progress(m.get("id"), "cancelled" if e.get("code") == -32800 else "failed")
            fut.set_exception(_error(e))
        else:
            self._finish_progress(m.get("id"), "done")
            fut.set_result(m.get("result"))

    # -- progress callbacks ---------------------------------------------------

    def _deliver_progress(self, token: Any, value: Any) -> bool:
        """Hands a $/progress value to its request's callback; False when no callback wants it.
        The callback is forgotten after an `end`."""
        ends = isinstance(value, dict) and value.get("kind") == "end"
        with self._lock:
            handler = self._progress.pop(token, None) if ends else self._progress.get(token)
        if handler is None:
            return False
        _run_callback(handler, value)
        return True

    def _finish_progress(self, request_id: Any, message: str) -> None:
        """At a request's reply: the `end` its callback has not seen yet (the daemon sends none
        for a request that finished under its progress threshold)."""
        with self._lock:
            token = self._progress_tokens.pop(request_id, None)
            handler = self._progress.pop(token, None) if token is not None else None
        if handler is not None:
            _run_callback(handler, {"kind": "end", "message": message})


def _given(**params: Any) -> dict:
    """The keyword arguments that are not None: what a model/* wrapper sends."""
    return {k: v for k, v in params.items() if v is not None}


def _named(models: Any) -> dict:
    """Students as `{name: model}`: a model name or a list of them is named by its models."""
    if isinstance(models, str):
        return {models: models}
    if isinstance(models, dict):
        return dict(models)
    return {m: m for m in models}


def _prompt(prompt: Any) -> Any:
    """A prompt format: a bare string is its separator."""
    return {"separator": prompt} if isinstance(prompt, str) else prompt


def _ids(tokens: Any) -> Any:
    """Token ids as JSON lists of ints. An integer numpy array or torch tensor would otherwise be
    sent in the binary array form, which model/* does not take for ids (numpy integer scalars
    have `tolist` too)."""
    if hasattr(tokens, "tolist"):
        return tokens.tolist()
    if isinstance(tokens, (list, tuple)):
        return [_ids(t) for t in tokens]
    return tokens


def _run_callback(callback: Callable, *args: Any) -> None:
    """Runs a user callback on the reading thread; an exception in it is printed, not fatal to
    the connection."""
    try:
        callback(*args)
    except Exception:  # noqa: BLE001 - the reading thread must go on
        traceback.print_exc()
