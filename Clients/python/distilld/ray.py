"""distilld on Ray: one private daemon per Ray worker, work split by example, results merged exactly.

    import ray
    from distilld.ray import WorkerPool, score_sharded, export_sharded, diagnose_sharded

    ray.init()
    with WorkerPool(4) as pool:                     # four actors, each owning a distilld
        r = score_sharded("teacher.safetensors", {"A": "a.safetensors"}, None,
                          {"name": "forward_kl"}, shards=16, workers=pool)

A shard is a range of examples (`range: {"start", "count"}` in distill/score and teacher/export) or
a set of files of its own. Each worker reads the files named in its shard where they are: the driver
sends paths and receives per-example numbers, never logits. The shards' replies are merged by the
rules in Protocol/README.md ("Merging shards"): aggregates from the per-example sums with
`math.fsum`, the spread, worst list, ranking and margin recomputed from the merged per-example
values, so the sharded answer equals a single daemon's bit for bit.

Ray is an optional dependency (`pip install ./Clients/python[ray]`); this module imports without
it and raises when a job is started. The `distilld` package must be importable on every node (the
actors run this module there).
"""

from __future__ import annotations

import atexit
import hashlib
import io
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Callable, Optional

from .client import Client, RPCError, _find_daemon

try:  # Ray is optional: the merge functions below work without it.
    import ray as _ray
except ImportError:  # pragma: no cover - exercised only without ray
    _ray = None

__all__ = ["WorkerPool", "DistilldWorker", "score_sharded", "export_sharded", "diagnose_sharded", "merge_scores",
           "spread", "exact_sum", "ShardError", "JobCancelled"]

_INF = {"Infinity": math.inf, "-Infinity": -math.inf}


class ShardError(RuntimeError):
    """A shard failed: `shard` (its index), `worker` (where it ran), `files` (what it read), and the
    daemon's `code`, `message` and `data` when the daemon refused it."""

    def __init__(self, shard: int, worker: str, files: list, message: str, code: Any = None, data: Any = None):
        named = ", ".join(files) if files else "no file"
        super().__init__(f"shard {shard} on worker {worker} ({named}) failed: {message}")
        self.shard, self.worker, self.files = shard, worker, files
        self.code, self.message, self.data = code, message, data


class JobCancelled(RuntimeError):
    """The whole job was cancelled (the `cancel` event was set, or KeyboardInterrupt). `stopped`
    lists the shards that were running then: `{"shard", "worker", "code"}`, `code` -32800 when
    the daemon stopped the request, None when it finished first."""

    def __init__(self, message: str, stopped: Optional[list] = None):
        super().__init__(message)
        self.stopped = stopped or []


# -- the actor ------------------------------------------------------------------------------------


def _kill_group(proc: subprocess.Popen) -> None:
    """Ends a daemon started in its own process group, and everything it started."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


class _Worker:
    """The body of the `DistilldWorker` actor (also usable without Ray, in-process, for tests).

    Owns one private distilld on stdio, started in a process group of its own (so a signal to the
    actor's group does not reach it and ours reaches all of it); it is killed when the worker stops,
    at the actor's interpreter exit (atexit), and, if the actor dies without either, it sees its
    stdin and stdout close and cancels what it was doing and exits. A daemon found dead when a
    shard runs, or dying under one, is restarted, the loads re-made, and the shard retried
    (`retries` times, default 1)."""

    def __init__(self, binary: Optional[str] = None, args: Optional[list] = None, retries: int = 1):
        self._binary = _find_daemon(binary)
        self._args = list(args or [])
        self._retries = retries
        self._lock = threading.Lock()  # guards _client, _proc, _loaded, _fraction, _current
        self._client: Optional[Client] = None
        self._proc: Optional[subprocess.Popen] = None
        self._loaded: set = set()
        self._fraction = 0.0
        self._current = None
        self.restarts = 0
        atexit.register(self.stop)
        self._start()

    def _start(self) -> None:
        proc = subprocess.Popen([self._binary, *self._args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, bufsize=0, start_new_session=True)
        client = Client(io.BufferedReader(proc.stdout, 1 << 16), proc.stdin, "lines", process=proc)
        with self._lock:
            self._proc, self._client, self._loaded = proc, client, set()

    def where(self) -> dict:
        """Where this worker runs: node address, actor process and daemon process ids."""
        node = _ray.util.get_node_ip_address() if _ray is not None and _ray.is_initialized() else "local"
        return {"node": node, "pid": os.getpid(), "daemonPid": self._proc.pid if self._proc else None,
                "restarts": self.restarts}

    def daemon_pid(self) -> Optional[int]:
        return self._proc.pid if self._proc else None

    def progress(self) -> float:
        """The running shard's fraction done (from its `$/progress`), 0 when idle."""
        return self._fraction

    def cancel(self) -> None:
        """Sends `$/cancelRequest` for the running request, if any."""
        with self._lock:
            current, client = self._current, self._client
        if current is not None and client is not None:
            try:
                client.cancel(current)
            except OSError:
                pass

    def stop(self) -> None:
        with self._lock:
            proc, client, self._proc, self._client = self._proc, self._client, None, None
        if client is not None:
            client._closed = True  # the reading thread ends when the pipe closes
        if proc is not None:
            _kill_group(proc)

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _wait(self, fut: Any) -> Any:
        """The reply, or ConnectionError once the daemon is seen dead: its reading thread fails the
        call when the pipe closes, and this check (every second) covers any way that could be missed."""
        while True:
            try:
                return fut.result(timeout=1.0)
            except FutureTimeout:
                if not self._alive():
                    raise ConnectionError("distilld died under the request") from None

    def _prepare(self, setup: list) -> None:
        """Loads what the shard needs (datasets, models, teachers) once per daemon."""
        for method, params in setup:
            key = json.dumps([method, params], sort_keys=True)
            if key in self._loaded:
                continue
            self._wait(self._client.call_async(method, dict(params, replace=True)))
            self._loaded.add(key)

    def count(self, method: str, params: dict, setup: list) -> dict:
        """How many examples a teacher file or dataset has (loaded under a scratch name, then
        unloaded), as `{"examples"}` or `{"error"}`: what the driver splits into ranges. A
        safetensors teacher is memory-mapped, so this reads little more than its header."""
        if not self._alive():
            self._start()
        try:
            self._prepare(setup)
            info = self._wait(self._client.call_async(method, dict(params, replace=True)))
            kind = "teacher" if method == "teacher/load" else "dataset"
            self._wait(self._client.call_async(f"{kind}/unload", {"name": params["name"]}))
        except RPCError as e:
            return {"error": {"code": e.code, "message": e.message, "data": e.data}}
        return {"examples": int(info["examples"] if kind == "teacher" else info.get("count", info.get("examples")))}

    def run(self, method: str, params: dict, setup: list) -> dict:
        """Runs one shard's request; returns `{"result"}` or `{"error": {code, message, data}}`, with
        `seconds`, `bytesIn` (the request's JSON) and `bytesOut` (the reply's)."""
        started = time.perf_counter()
        attempts = restarted = 0
        while True:
            self._fraction = 0.0
            try:
                if not self._alive():  # died between shards: a new one, with the loads made again
                    self._start()
                    self.restarts += 1
                    restarted += 1
                self._prepare(setup)

                def on_progress(value: dict) -> None:
                    if isinstance(value, dict) and "percentage" in value:
                        self._fraction = value["percentage"] / 100.0

                fut = self._client.call_async(method, params, progress=on_progress)
                with self._lock:
                    self._current = fut
                try:
                    result = self._wait(fut)
                finally:
                    with self._lock:
                        self._current = None
                reply: dict = {"result": result}
                break
            except RPCError as e:
                reply = {"error": {"code": e.code, "message": e.message, "data": e.data}}
                break
            except (ConnectionError, BrokenPipeError, OSError) as e:
                # The daemon died (or was killed): start a new one and run the shard again.
                if attempts >= self._retries:
                    reply = {"error": {"code": None, "message": f"distilld died and the shard was retried "
                                       f"{attempts} time(s): {e}", "data": None}}
                    break
                attempts += 1
                if self._proc is not None:
                    _kill_group(self._proc)
                self._start()
                self.restarts += 1
                restarted += 1
        self._fraction = 0.0
        reply["seconds"] = time.perf_counter() - started
        reply["bytesIn"] = len(json.dumps(params, separators=(",", ":")))
        reply["bytesOut"] = len(json.dumps(reply.get("result") or reply.get("error"), separators=(",", ":")))
        reply["restarts"] = restarted
        return reply


#: The Ray actor: `DistilldWorker.remote(binary)`. One CPU each; a few concurrent calls so that
#: `progress` and `cancel` are answered while `run` works.
DistilldWorker = _ray.remote(num_cpus=1, max_concurrency=4)(_Worker) if _ray is not None else None


def _need_ray() -> None:
    if _ray is None:
        raise ImportError("distilld.ray needs Ray: pip install './Clients/python[ray]' (or ray==2.60.0)")
    if not _ray.is_initialized():
        raise RuntimeError("call ray.init() (or connect to a cluster) before starting a sharded job")


class WorkerPool:
    """`workers` DistilldWorker actors, each with its own daemon. Reuse one pool for several jobs
    (the daemons keep their loads); close it (or use `with`) to end the actors and their daemons."""

    def __init__(self, workers: int = 2, binary: Optional[str] = None, args: Optional[list] = None,
                 retries: int = 1):
        _need_ray()
        binary = _find_daemon(binary)  # resolved here, so a bad path fails before any actor starts
        self.actors = [DistilldWorker.remote(binary, args, retries) for _ in range(workers)]
        places = _ray.get([a.where.remote() for a in self.actors])
        self.names = [f"{i} (node {p['node']}, pid {p['pid']})" for i, p in enumerate(places)]

    def daemon_pids(self) -> list:
        return _ray.get([a.daemon_pid.remote() for a in self.actors])

    def close(self) -> None:
        for a in self.actors:
            try:
                _ray.get(a.stop.remote(), timeout=10)
            except Exception:  # noqa: BLE001 - an actor already gone has nothing to stop
                pass
            _ray.kill(a)
        self.actors = []

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- running a job --------------------------------------------------------------------------------


class _Shard:
    def __init__(self, index: int, method: str, params: dict, setup: list, files: list, start: int = 0):
        self.index, self.method, self.params, self.setup, self.files, self.start = (
            index, method, params, setup, files, start)


def _progress_sink(progress: Any) -> Optional[Callable[[dict], None]]:
    """`progress`: None, a callable taking `$/progress`-like values, or True for a bar (tqdm when
    installed, else a line on stderr)."""
    if progress is None or progress is False:
        return None
    if callable(progress):
        return progress
    try:
        from tqdm.auto import tqdm
    except ImportError:
        tqdm = None
    state: dict = {}

    def bar(value: dict) -> None:
        if tqdm is not None:
            if value["kind"] == "begin":
                state["bar"] = tqdm(total=100, desc=value.get("title", "distilld"), unit="%")
            b = state.get("bar")
            if b is not None:
                b.n = value.get("percentage", b.n)
                b.set_postfix_str(value.get("message", ""))
                b.refresh()
                if value["kind"] == "end":
                    b.close()
        else:
            print(f"\r{value.get('title', '')} {value.get('percentage', '')}% {value.get('message', '')}",
                  end="\n" if value["kind"] == "end" else "", file=sys.stderr, flush=True)

    return bar


def _run(pool: WorkerPool, shards: list, title: str, progress: Any, cancel: Optional[threading.Event]) -> list:
    """Runs every shard on the pool, one at a time per worker, the next shard going to the first
    worker free. Returns the replies in shard order; the first failure cancels the rest and raises
    ShardError."""
    sink = _progress_sink(progress)
    pending = list(shards)
    idle = list(range(len(pool.actors)))
    running: dict = {}  # ObjectRef -> (shard, worker index)
    replies: list = [None] * len(shards)
    done = 0
    last_percent = -1

    def report(kind: str, message: str = "") -> None:
        nonlocal last_percent
        if sink is None:
            return
        fractions = []
        if running:
            try:
                fractions = _ray.get([pool.actors[w].progress.remote() for _, w in running.values()], timeout=2)
            except Exception:  # noqa: BLE001 - progress is best effort
                fractions = []
        percent = int(100 * (done + sum(fractions)) / max(len(shards), 1))
        if kind == "report" and percent <= last_percent:
            return
        last_percent = max(percent, last_percent)
        value = {"kind": kind, "percentage": percent if kind != "end" else 100,
                 "message": message or f"{done}/{len(shards)} shards"}
        if kind == "begin":
            value["title"] = title
        sink(value)

    def stop_all() -> list:
        """$/cancelRequest to every running shard's daemon; waits for their answers."""
        for ref, (_, w) in running.items():
            pool.actors[w].cancel.remote()
        stopped = []
        if running:
            ready, _ = _ray.wait(list(running), num_returns=len(running), timeout=30)
            for ref in running:
                shard, w = running[ref]
                code = None
                if ref in ready:
                    try:
                        code = (_ray.get(ref).get("error") or {}).get("code")
                    except Exception:  # noqa: BLE001 - a worker that died has nothing to say
                        code = None
                stopped.append({"shard": shard.index, "worker": pool.names[w], "code": code})
        return stopped

    report("begin")
    try:
        while pending or running:
            if cancel is not None and cancel.is_set():
                raise JobCancelled(f"{title}: cancelled with {done} of {len(shards)} shards done")
            while pending and idle:
                shard, w = pending.pop(0), idle.pop(0)
                ref = pool.actors[w].run.remote(shard.method, shard.params, shard.setup)
                running[ref] = (shard, w)
            ready, _ = _ray.wait(list(running), num_returns=1, timeout=0.25)
            for ref in ready:
                shard, w = running.pop(ref)
                try:
                    reply = _ray.get(ref)
                except _ray.exceptions.RayActorError as e:
                    raise ShardError(shard.index, pool.names[w], shard.files, f"the worker died: {e}") from e
                if "error" in reply:
                    e = reply["error"]
                    files = list(shard.files)
                    data = e.get("data")
                    if isinstance(data, dict) and data.get("file") and data["file"] not in files:
                        files.insert(0, data["file"])
                    elif isinstance(data, dict) and data.get("file"):
                        files = [data["file"]] + [f for f in files if f != data["file"]]
                    raise ShardError(shard.index, pool.names[w], files, e["message"], e.get("code"), data)
                reply["worker"] = pool.names[w]
                replies[shard.index] = reply
                done += 1
                idle.append(w)
            report("report")
    except JobCancelled as e:
        e.stopped = stop_all()
        report("end", "cancelled")
        raise
    except KeyboardInterrupt:
        stopped = stop_all()
        report("end", "cancelled")
        raise JobCancelled(f"{title}: interrupted with {done} of {len(shards)} shards done", stopped) from None
    except BaseException:
        stop_all()
        report("end", "failed")
        raise
    report("end", "done")
    return replies


def _pool_for(workers: Any, binary: Optional[str], retries: int, shards: int) -> tuple:
    """The pool to use, and whether this job owns it (and so closes it)."""
    if isinstance(workers, WorkerPool):
        return workers, False
    _need_ray()
    n = workers or max(1, min(shards, int(_ray.available_resources().get("CPU", 1))))
    return WorkerPool(n, binary=binary, retries=retries), True


def split(total: int, shards: int) -> list:
    """`shards` consecutive ranges covering [0, total), sizes differing by at most one."""
    shards = max(1, min(shards, total)) if total > 0 else 1
    base, extra = divmod(total, shards)
    ranges, start = [], 0
    for i in range(shards):
        count = base + (1 if i < extra else 0)
        ranges.append({"start": start, "count": count})
        start += count
    return ranges


def _file_spec(value: Any) -> Any:
    """A path (str) as a file model `{"path"}`, absolute; anything else as given."""
    if isinstance(value, str) and not value.startswith("builtin:"):
        return {"path": os.path.abspath(value)}
    if isinstance(value, str):
        return {"path": value}
    if isinstance(value, dict) and isinstance(value.get("path"), str) and not value["path"].startswith("builtin:"):
        return dict(value, path=os.path.abspath(value["path"]))
    return value


def _paths(*specs: Any) -> list:
    out = []
    for s in specs:
        if isinstance(s, dict) and isinstance(s.get("path"), str):
            out.append(s["path"])
    return out


def _setup(models: Optional[dict], datasets: Optional[dict], data: Optional[tuple] = None) -> list:
    """What every worker loads before its shards: datasets first (an n-gram model may be built from
    one; `data` is the shard's own `(name, load params)`), then models. Paths are made absolute on
    the driver: workers may run elsewhere."""
    setup = []
    for name, params in [*(datasets or {}).items(), *([data] if data and data[1] else [])]:
        p = dict(params)
        if isinstance(p.get("path"), str) and not p["path"].startswith("builtin:"):
            p["path"] = os.path.abspath(p["path"])
        setup.append(("dataset/load", dict(p, name=name)))
    for name, params in (models or {}).items():
        p = dict(params)
        if isinstance(p.get("path"), str):
            p["path"] = os.path.abspath(p["path"])
        setup.append(("model/load", dict(p, name=name)))
    return setup


_DATA = "distilld-ray-dataset"


def _dataset_source(value: Any, datasets: Optional[dict]) -> tuple:
    """A dataset argument as (name to score on, its load params or None when `datasets` has it)."""
    if isinstance(value, str) and datasets and value in datasets:
        return value, None
    spec = {"path": value} if isinstance(value, str) else dict(value)
    if isinstance(spec.get("path"), str) and not spec["path"].startswith("builtin:"):
        spec["path"] = os.path.abspath(spec["path"])
    name = _DATA + "-" + hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    return name, spec


def _plan(teacher: Any, students: dict, data: Any, shards: Optional[int], base: dict, method: str,
          models: Optional[dict], datasets: Optional[dict], pool: Optional[WorkerPool]) -> list:
    """The shards of a job: each a request with its own range or its own files."""
    setup = _setup(models, datasets)
    out = []
    if data is None or (isinstance(data, list) and all(isinstance(s, dict) and "dataset" not in s for s in data)
                        and data and ("teacher" in data[0] or "students" in data[0])):
        if isinstance(data, list):  # explicit shards, each with its own files
            for i, s in enumerate(data):
                t = _file_spec(s.get("teacher", teacher))
                st = {k: _file_spec(v) for k, v in (s.get("students") or students).items()}
                out.append(_Shard(i, method, dict(base, teacher=t, students=st), setup, _paths(t, *st.values())))
            return out
        t = _file_spec(teacher)
        st = {k: _file_spec(v) for k, v in students.items()}
        total = _count(pool, "teacher/load", {"name": "distilld-ray-probe", **t}, setup)
        for i, r in enumerate(split(total, shards or len(pool.actors))):
            out.append(_Shard(i, method, dict(base, teacher=t, students=st, range=r), setup, _paths(t, *st.values()),
                              r["start"]))
        return out
    # Models reading a dataset.
    items = data if isinstance(data, list) else [data]
    if isinstance(data, list):
        for i, item in enumerate(items):
            item = item["dataset"] if isinstance(item, dict) and "dataset" in item else item
            name, spec = _dataset_source(item, datasets)
            s_setup = _setup(models, datasets, (name, spec))
            files = [spec["path"]] if spec and isinstance(spec.get("path"), str) else []
            out.append(_Shard(i, method, dict(base, dataset=name), s_setup, files))
        return out
    name, spec = _dataset_source(data, datasets)
    s_setup = _setup(models, datasets, (name, spec))
    files = [spec["path"]] if spec and isinstance(spec.get("path"), str) else [
        (datasets or {}).get(name, {}).get("path", name)]
    total = _count(pool, "dataset/load", dict(spec or datasets[name], name="distilld-ray-probe"), setup)
    for i, r in enumerate(split(total, shards or len(pool.actors))):
        out.append(_Shard(i, method, dict(base, dataset=name, range=r), s_setup, files, r["start"]))
    return out


def _count(pool: WorkerPool, method: str, params: dict, setup: list) -> int:
    """The examples to split, asked of the first worker (the driver may not see the file)."""
    reply = _ray.get(pool.actors[0].count.remote(method, params, setup))
    if "error" in reply:
        e = reply["error"]
        raise ShardError(0, pool.names[0], _paths(params), e["message"], e["code"], e["data"])
    return reply["examples"]


def _totals(replies: list) -> dict:
    return {"toWorkers": sum(r["bytesIn"] for r in replies), "fromWorkers": sum(r["bytesOut"] for r in replies)}


def _shard_info(shards: list, replies: list) -> list:
    return [{"shard": s.index, "worker": r["worker"], "files": s.files, "range": s.params.get("range"),
             "seconds": r["seconds"], "bytesIn": r["bytesIn"], "bytesOut": r["bytesOut"], "restarts": r["restarts"]}
            for s, r in zip(shards, replies)]


# -- the driver API -------------------------------------------------------------------------------


def score_sharded(teacher: Any, students: dict, dataset_or_files: Any = None, loss: Optional[dict] = None,
                  shards: Optional[int] = None, *, workers: Any = None, models: Optional[dict] = None,
                  datasets: Optional[dict] = None, worst: int = 5, per_example: bool = True,
                  progress: Any = None, cancel: Optional[threading.Event] = None, binary: Optional[str] = None,
                  retries: int = 1, extra: Optional[dict] = None) -> dict:
    """distill/score over shards, merged into the result one daemon would give.

    * Files: `teacher` a path (or `{"path", "format", "options"}`), `students` name → path, and
      `dataset_or_files=None`: the file is split into `shards` example ranges. Or
      `dataset_or_files` a list of shards `[{"teacher": path, "students": {name: path}}, ...]`,
      each naming its own files (rows numbered on from the shard before when they have no ids).
    * Models on a paired dataset: `teacher={"model": T}`, `students={"S": {"model": S}}`,
      `models={name: model/load params}` loaded on every worker, and `dataset_or_files` a dataset
      file (split into `shards` ranges), a name in `datasets`, or a list of dataset files (a shard
      each).

    `workers`: a WorkerPool (reused, left open) or a number of workers to start for this job.
    `progress`: a callback receiving `$/progress`-like values for the whole job, or True for a bar.
    `cancel`: a threading.Event; setting it (or KeyboardInterrupt) cancels every shard (JobCancelled).
    A failing shard raises ShardError naming the shard, the worker and the file. The result is
    distill/score's, plus `shards` (per shard: worker, files, range, seconds, bytes) and
    `bytesMoved` (`toWorkers`, `fromWorkers`: the JSON requests and replies that crossed between
    processes; logits never do)."""
    if extra and "conventions" in extra:
        raise ValueError("conventions are not merged across shards; score them on one daemon")
    base = dict(extra or {}, students=None, loss=dict(loss or {}), worst=worst, perExample=True)
    n_shards = shards or (len(dataset_or_files) if isinstance(dataset_or_files, list) else None)
    pool, owned = _pool_for(workers, binary, retries, n_shards or 2)
    try:
        plan = _plan(teacher, students, dataset_or_files, shards, dict(base, teacher=teacher, students=students),
                     "distill/score", models, datasets, pool)
        replies = _run(pool, plan, "distill/score (sharded)", progress, cancel)
    finally:
        if owned:
            pool.close()
    merged = merge_scores([r["result"] for r in replies], worst=worst, per_example=per_example)
    merged["shards"] = _shard_info(plan, replies)
    merged["bytesMoved"] = _totals(replies)
    return merged


def export_sharded(model: str, dataset: Any, directory: str, shards: Optional[int] = None, *, k: int = 20,
                   context: str = "full", workers: Any = None, models: Optional[dict] = None,
                   datasets: Optional[dict] = None, overwrite: bool = False, progress: Any = None,
                   cancel: Optional[threading.Event] = None, binary: Optional[str] = None, retries: int = 1,
                   extra: Optional[dict] = None) -> dict:
    """teacher/export over shards: shard i writes `directory/shard-0000i.safetensors` (its example
    range, from the worker that ran it: `directory` must be shared by the workers, or local on
    one machine), and the driver writes `directory/index.json` listing each shard's file, range,
    examples, target tokens, positions and bytes. Returns the index."""
    directory = os.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    index_path = os.path.join(directory, "index.json")
    if os.path.exists(index_path) and not overwrite:
        raise FileExistsError(f"{index_path} exists; pass overwrite=True")
    base = dict(extra or {}, model=model, k=k, context=context, overwrite=overwrite)
    n_shards = shards or (len(dataset) if isinstance(dataset, list) else None)
    pool, owned = _pool_for(workers, binary, retries, n_shards or 2)
    try:
        plan = _plan(None, {}, dataset, shards, base, "teacher/export", models, datasets, pool)
        for s in plan:
            s.params["path"] = os.path.join(directory, f"shard-{s.index:05d}.safetensors")
        replies = _run(pool, plan, "teacher/export (sharded)", progress, cancel)
    finally:
        if owned:
            pool.close()
    start = 0
    entries = []
    for s, r in zip(plan, replies):
        res = r["result"]
        rng = s.params.get("range") or {"start": start, "count": res["examples"]}
        entries.append({"path": os.path.basename(s.params["path"]), "range": {"start": rng["start"],
                        "count": res["examples"]}, "examples": res["examples"], "positions": res["positions"],
                        "targetTokens": res["targetTokens"], "bytes": res["bytes"], "worker": r["worker"]})
        start = rng["start"] + res["examples"]
    first = replies[0]["result"]
    index = {"format": "distilld-topk-index/1", "model": model, "k": first["k"], "vocab": first["vocab"],
             "context": context, "examples": sum(e["examples"] for e in entries),
             "targetTokens": sum(e["targetTokens"] for e in entries),
             "bytes": sum(e["bytes"] for e in entries), "shards": entries}
    tmp = index_path + f".tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(index, f, indent=1)
    os.replace(tmp, index_path)
    return dict(index, index=index_path, bytesMoved=_totals(replies))


def diagnose_sharded(teacher: str, dataset: Any, student: Optional[str] = None, shards: Optional[int] = None, *,
                     workers: Any = None, models: Optional[dict] = None, datasets: Optional[dict] = None,
                     worst: int = 5, progress: Any = None, cancel: Optional[threading.Event] = None,
                     binary: Optional[str] = None, retries: int = 1, prompt: Optional[dict] = None) -> dict:
    """The context gap over a large dataset, sharded. Teacher-forced distill/score with the teacher
    model reading the full context as teacher and the same model reading the simplified context
    x′ as a student gives KL(p_full‖p_simplified) at every target token: the context gap. With
    `student`, the student reading x′ is scored too, KL(p_full‖q), and the capacity gap is the
    difference, KL(p_full‖q) − context gap, per example and over all target tokens (means over
    tokens, merged exactly)."""
    students = {"contextGap": {"model": teacher}}
    if student is not None:
        students["student"] = {"model": student}
    r = score_sharded({"model": teacher}, students, dataset, {"name": "forward_kl", "reduction": "mean"}, shards,
                      workers=workers, models=models, datasets=datasets, worst=worst, progress=progress,
                      cancel=cancel, binary=binary, retries=retries, extra={"prompt": prompt} if prompt else None)
    by = {s["name"]: s for s in r["students"]}
    gap = by["contextGap"]
    out: dict = {"teacher": teacher, "student": student, "contextGap": gap["loss"],
                 "targetTokens": gap["validPositions"], "examples": [], "spread": {"contextGap": gap["spread"]},
                 "shards": r["shards"], "bytesMoved": r["bytesMoved"]}
    rows = [{"id": e["id"], "tokens": e["valid"], "contextGap": e["loss"]} for e in gap["perExample"]]
    if student is not None:
        s = by["student"]
        out["studentKL"] = s["loss"]
        out["capacityGap"] = _sub(s["loss"], gap["loss"])
        for row, e in zip(rows, s["perExample"]):
            row["studentKL"] = e["loss"]
            row["capacityGap"] = _sub(e["loss"], row["contextGap"])
        out["spread"]["studentKL"] = s["spread"]
        out["spread"]["capacityGap"] = spread([_num(x["capacityGap"]) for x in rows if x["tokens"] > 0], wire=True)
    out["examples"] = rows
    return out


def _sub(a: Any, b: Any) -> Any:
    x, y = _num(a), _num(b)
    return _wire(x - y) if not (math.isinf(x) and math.isinf(y)) else None


# -- the exact merge ------------------------------------------------------------------------------


def _num(x: Any) -> float:
    return _INF[x] if isinstance(x, str) else float(x)


def _wire(x: float) -> Any:
    """A float as the daemon writes it: ±∞ as the strings "Infinity", "-Infinity"."""
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def exact_sum(values: list) -> float:
    """The correctly rounded sum, as the daemon takes every sum over examples (ExactSum in
    Sources/DistillMath): `math.fsum`, except that non-finite terms make it their plain sum in
    order, and a sum that overflows is the plain sum of all the terms."""
    special = [v for v in values if not math.isfinite(v)]
    if special:
        total = 0.0
        for v in special:
            total += v
        return total
    try:
        return math.fsum(values)
    except OverflowError:
        total = 0.0
        for v in values:
            total += v
        return total


def spread(values: list, wire: bool = False) -> dict:
    """The daemon's `spread` of per-example values (Sources/DistillAnalysis/Statistics.swift), with
    the same operations, so the same bits: the mean the correctly rounded sum over the count; the
    population std from the correctly rounded sum of squared deviations (+∞ when the mean is not
    finite); numpy-style linear percentiles on the sorted values."""
    n = len(values)
    if n == 0:
        out = {"count": 0, "mean": 0.0, "std": 0.0, "min": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
        return out
    s = sorted(values)
    mean = exact_sum(values) / n
    std = math.sqrt(exact_sum([(v - mean) * (v - mean) for v in values]) / n) if math.isfinite(mean) else math.inf

    def q(f: float) -> float:
        pos = f * float(n - 1)
        lo = int(math.floor(pos))
        hi = min(lo + 1, n - 1)
        w = pos - float(lo)
        if w == 0 or s[lo] == s[hi]:
            return s[lo]
        return s[lo] + (s[hi] - s[lo]) * w

    out = {"count": n, "mean": mean, "std": std, "min": s[0], "p50": q(0.5), "p90": q(0.9), "p99": q(0.99),
           "max": s[-1]}
    return {k: (_wire(v) if wire and k != "count" else v) for k, v in out.items()} if wire else out


def _ranked(values: list) -> list:
    """Names by value, lowest first; ties keep the given order (Scoring.rankedNames)."""
    return [name for _, name in sorted(((v, i), name) for i, (name, v) in enumerate(values))]


def merge_scores(results: list, worst: int = 5, per_example: bool = True) -> dict:
    """Merges distill/score results of consecutive shards (in example order) into the result one
    daemon gives over all the examples (Protocol/README.md, "Merging shards"). Each result
    must carry `perExample` with `sum` and `valid`."""
    if not results:
        raise ValueError("nothing to merge")
    first = results[0]
    reduction = first["loss"]["reduction"]
    name = first["loss"]["name"]
    ids = _merged_ids(results)
    total_examples = len(ids)
    positions = max(r["teacher"]["positions"] for r in results)
    merged_students = []
    for si, s0 in enumerate(first["students"]):
        parts = [r["students"][si] for r in results]
        if any(p["name"] != s0["name"] for p in parts):
            raise ValueError("shards list the students in different orders")
        per, valid, sums = [], [], []
        for p in parts:
            if "perExample" not in p or (p["perExample"] and "sum" not in p["perExample"][0]):
                raise ValueError("a shard's result has no per-example sums: the daemon predates sharded scoring")
            for e in p["perExample"]:
                per.append(_num(e["loss"]))
                valid.append(int(e["valid"]))
                sums.append(_num(e["sum"]))
        nv = sum(valid)
        out: dict = {"name": s0["name"]}
        values = None
        if reduction in ("sum", "mean", "batchmean"):
            total = exact_sum(sums)
            if reduction == "sum":
                loss = total
            elif reduction == "mean":
                loss = total / nv if nv > 0 else 0.0
            else:
                loss = total / total_examples if total_examples > 0 else 0.0
        elif reduction == "none":
            values = []
            for r, p in zip(results, parts):
                t = r["teacher"]["positions"]
                rows = [_num(v) for v in p["values"]]
                for i in range(len(rows) // max(t, 1)):
                    values.extend(rows[i * t:(i + 1) * t] + [0.0] * (positions - t))
            loss = exact_sum(sums) / nv if nv > 0 else 0.0
        else:  # sequence_sum, sequence_mean: one value per example
            values = [_num(v) for p in parts for v in p["values"]]
            counted = [v for v, c in zip(values, valid) if c > 0]
            loss = exact_sum(counted) / len(counted) if counted else 0.0
        out["loss"] = _wire(loss)
        out["source"] = _source([p["source"] for p in parts])
        out["validPositions"] = nv
        if values is not None:
            out["values"] = [_wire(v) for v in values]
        if per_example:
            out["perExample"] = [{"id": i, "loss": _wire(l), "sum": _wire(sm), "valid": c}
                                 for i, l, sm, c in zip(ids, per, sums, valid)]
        counted = [(k, per[k]) for k in range(total_examples) if valid[k] > 0]
        out["spread"] = spread([v for _, v in counted], wire=True)
        order = sorted(counted, key=lambda kv: (-kv[1], kv[0]))[:worst]
        out["worst"] = [{"id": ids[k], "loss": _wire(v), "sum": _wire(sums[k]), "valid": valid[k]} for k, v in order]
        agree = sum(p["top1Agreement"]["count"] for p in parts)
        # The rate is count / valid positions, 0 for nll (no teacher: Scoring's needsTeacher).
        out["top1Agreement"] = {"count": agree, "rate": agree / nv if nv > 0 and name != "nll" else 0.0}
        out["entropy"] = {k: _weighted([(p["entropy"][k], p["validPositions"]) for p in parts])
                          for k in ("teacher", "student", "crossEntropy")}
        if "tail" in s0:
            out["tail"] = {"policy": s0["tail"]["policy"]}
            for side in ("teacherMass", "studentMass"):
                out["tail"][side] = {
                    "mean": _weighted([(p["tail"][side]["mean"], p["validPositions"]) for p in parts]) or 0.0,
                    "max": max(_num(p["tail"][side]["max"]) for p in parts)}
        if any("worstTokens" in p for p in parts):
            by_id = {w["id"]: w for p in parts for w in p.get("worstTokens", [])}
            out["worstTokens"] = [by_id[w["id"]] for w in out["worst"] if w["id"] in by_id]
        merged_students.append(out)
    result: dict = {"loss": first["loss"], "teacher": dict(first["teacher"], examples=total_examples,
                                                           positions=positions,
                                                           source=_source([r["teacher"]["source"] for r in results]))}
    result["students"] = merged_students
    ranking = _ranked([(s["name"], _num(s["loss"])) for s in merged_students])
    result["ranking"] = ranking
    result["best"] = ranking[0]
    if len(ranking) > 1:
        by = {s["name"]: _num(s["loss"]) for s in merged_students}
        best = by[ranking[0]]
        margin = by[ranking[1]] - best
        result["margin"] = {"absolute": _wire(margin),
                            "relative": margin / best if best > 0 and math.isfinite(margin) else None}
    if "matching" in first:
        m = {"method": first["matching"]["method"]}
        for k in ("matched", "unmatchedTeacherRows", "unmatchedExamples"):
            m[k] = sum(r["matching"][k] for r in results)
        result["matching"] = m
    if "prompt" in first:
        p = {"separator": first["prompt"]["separator"],
             "examples": sum(r["prompt"]["examples"] for r in results),
             "targetTokens": sum(r["prompt"]["targetTokens"] for r in results),
             "positions": max(r["prompt"]["positions"] for r in results),
             "contextTokens": {"teacher": sum(r["prompt"]["contextTokens"]["teacher"] for r in results),
                               "students": {n: sum(r["prompt"]["contextTokens"]["students"][n] for r in results)
                                            for n in first["prompt"]["contextTokens"]["students"]}}}
        result["prompt"] = p
    return result


def _source(sources: list) -> Any:
    """One source when every shard read the same (a file split by range), else the list of them
    (shards with files of their own)."""
    return sources[0] if all(x == sources[0] for x in sources) else sources


def _weighted(pairs: list) -> Any:
    """A mean of means weighted by their counts (the side statistics: equal to one daemon's up to
    rounding, as the daemon's own part-wise join). Shards with no valid position do not count."""
    counted = [(v, c) for v, c in pairs if c > 0]
    if not counted:
        return pairs[0][0] if pairs else None
    if any(v is None for v, _ in counted):
        return None
    n = sum(c for _, c in counted)
    values = [_num(v) * c for v, c in counted]
    return _wire(exact_sum(values) / n)


def _merged_ids(results: list) -> list:
    """Every example's id, in shard order. Ids must be unique across shards; shards that number
    their rows from 0 (files without ids, each shard its own file) are renumbered on from the
    shards before them, as one file holding them all would be."""
    ids: list = []
    seen: set = set()
    for r in results:
        shard_ids = [e["id"] for e in r["students"][0]["perExample"]]
        if shard_ids == [str(i) for i in range(len(shard_ids))] and ids:
            shard_ids = [str(len(ids) + i) for i in range(len(shard_ids))]
            for s in r["students"]:
                for e, new in zip(s["perExample"], shard_ids):
                    e["id"] = new
                for w in s["worst"]:
                    w["id"] = str(len(ids) + int(w["id"]))
        for i in shard_ids:
            if i in seen:
                raise ValueError(f"example id {i!r} appears in two shards")
            seen.add(i)
        ids.extend(shard_ids)
    return ids
