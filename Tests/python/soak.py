#!/usr/bin/env python3
"""The soak: 32 socket clients for a bounded time against one daemon with a workspace, and a
33rd process pinging it, measuring what test_soak.py asserts and README's Soak figures quote.

Each client has its own connection and its own teacher names (`cW-K`), so it knows exactly which
loads were acknowledged and not later unloaded. It mixes: file loads (some with `replace`),
unloads, scores (of its own teachers and of a shared one, some with conventions), diagnoses,
cancellations ($/cancelRequest right after the request), FIFO loads (a path that would block a
reader forever), disconnects in the middle of a request, and disconnects in the middle of a
message. Every request sent on a connection that stays open must get exactly one reply; a load
sent on a connection dropped before its reply makes that name uncertain (either state is right).

Usage: soak.py DISTILLD [SECONDS]   (prints the figures as JSON)
       soak.py --ping SOCKET SECONDS (the pinger; prints its latencies in ms as JSON)
"""

import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

CLIENTS = 32
# How long a FIFO load may take before the client counts it as blocked and releases it by
# opening the FIFO for writing (the blocked reader then sees an empty file).
FIFO_PATIENCE = 3.0
REPLY_TIMEOUT = 60.0


def soak_seconds(default=20.0):
    return float(os.environ.get("DISTILLD_SOAK_SECONDS", default))


# ----------------------------------------------------------------------------- a connection


class Link:
    def __init__(self, path, timeout=REPLY_TIMEOUT):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buffer = b""
        self.replies = {}  # id -> number of replies seen

    def send(self, obj):
        self.sock.sendall(json.dumps(obj).encode() + b"\n")

    def read(self):
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("daemon closed the connection")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def wait(self, want):
        """Reads until the reply to `want`; counts every reply seen on the way."""
        while True:
            m = self.read()
            if "id" in m and ("result" in m or "error" in m):
                self.replies[m["id"]] = self.replies.get(m["id"], 0) + 1
                if m["id"] == want:
                    return m

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ----------------------------------------------------------------------------- one client


class Client(threading.Thread):
    def __init__(self, w, sock_path, files, deadline, seed):
        super().__init__(daemon=True)
        self.w, self.sock_path, self.files, self.deadline = w, sock_path, files, deadline
        self.rng = random.Random(seed)
        self.loaded = set()  # acknowledged and not unloaded since
        self.uncertain = set()  # a load or unload whose reply was never read (connection dropped)
        self.next_name = 0
        self.next_id = 0
        self.sent = 0
        self.answered = 0
        self.problems = []
        self.counts = {}
        self.fifo_latencies = []
        self.fifo_blocked = 0
        self.link = Link(sock_path)

    def _id(self):
        self.next_id += 1
        return f"{self.w}:{self.next_id}"

    def _count(self, op):
        self.counts[op] = self.counts.get(op, 0) + 1

    def call(self, method, params):
        rid = self._id()
        self.link.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        self.sent += 1
        m = self.link.wait(rid)
        self.answered += 1
        return m

    def _expect_ok(self, op, m):
        if "error" in m:
            self.problems.append(f"client {self.w} {op}: {m['error']}")
        return m.get("result")

    def _reconnect(self):
        self._check_link()
        self.link.close()
        self.link = Link(self.sock_path)

    def _check_link(self):
        dup = {k: v for k, v in self.link.replies.items() if v != 1}
        if dup:
            self.problems.append(f"client {self.w}: ids answered more than once: {dup}")

    # --- operations

    def op_load(self):
        replace = bool(self.loaded) and self.rng.random() < 0.3
        if replace:
            name = self.rng.choice(sorted(self.loaded))
        else:
            if len(self.loaded) >= 4:
                return self.op_unload()
            name = f"c{self.w}-{self.next_name}"
            self.next_name += 1
        path = self.rng.choice(self.files["teachers"])
        m = self.call("teacher/load", {"name": name, "path": path, "replace": replace})
        if self._expect_ok("load", m) is not None:
            self.loaded.add(name)

    def op_unload(self):
        if self.uncertain and self.rng.random() < 0.5:
            # A load whose reply was never read: unloading it settles it (1001 leaves it uncertain:
            # never loaded, or still on its way).
            name = self.rng.choice(sorted(self.uncertain))
            m = self.call("teacher/unload", {"name": name})
            if "result" in m:
                self.uncertain.discard(name)
            elif m["error"]["code"] != 1001:
                self.problems.append(f"client {self.w} unload of {name}: {m['error']}")
            return
        if not self.loaded:
            return self.op_load()
        name = self.rng.choice(sorted(self.loaded))
        m = self.call("teacher/unload", {"name": name})
        if self._expect_ok("unload", m) is not None:
            self.loaded.discard(name)

    def op_score(self):
        teacher = self.rng.choice(sorted(self.loaded)) if self.loaded and self.rng.random() < 0.5 else "base"
        params = {"teacher": teacher, "students": {"s": {"path": self.files["student"]}}}
        if self.rng.random() < 0.3:
            params["conventions"] = ["pytorch_kldiv_batchmean", "hinton"]
            params["loss"] = {"name": "forward_kl", "temperature": 2.0}
        self._expect_ok("score", self.call("distill/score", params))

    def op_diagnose(self):
        self._expect_ok("diagnose", self.call("distill/diagnose", {"dataset": "pairs", "inputs": "inputs"}))

    def op_cancel(self):
        rid = self._id()
        self.link.send({"jsonrpc": "2.0", "id": rid, "method": "distill/score",
                        "params": {"teacher": "base", "students": {"s": {"path": self.files["student"]}}}})
        self.link.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": rid}})
        self.sent += 1
        m = self.link.wait(rid)
        self.answered += 1
        if "error" in m and m["error"]["code"] != -32800:
            self.problems.append(f"client {self.w} cancel: {m['error']}")

    def op_fifo(self):
        fifo = self.files["fifos"][self.w]
        rid = self._id()
        t0 = time.monotonic()
        self.link.send({"jsonrpc": "2.0", "id": rid, "method": "teacher/load",
                        "params": {"name": f"fifo{self.w}", "path": fifo}})
        self.sent += 1
        self.link.sock.settimeout(FIFO_PATIENCE)
        try:
            m = self.link.wait(rid)
        except socket.timeout:
            # Blocked in open(2): a writer that opens and closes the FIFO releases it.
            self.fifo_blocked += 1
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
            self.link.sock.settimeout(REPLY_TIMEOUT)
            m = self.link.wait(rid)
        finally:
            self.link.sock.settimeout(REPLY_TIMEOUT)
        self.answered += 1
        self.fifo_latencies.append(time.monotonic() - t0)
        if "error" not in m:
            self.problems.append(f"client {self.w} fifo load was accepted: {m}")
            self.call("teacher/unload", {"name": f"fifo{self.w}"})
        elif m["error"]["code"] != 1004:
            self.problems.append(f"client {self.w} fifo load: {m['error']}")

    def op_drop_mid_request(self):
        # A request whose reply is never read; a load makes its name uncertain.
        if self.rng.random() < 0.5 and len(self.loaded) < 4:
            name = f"c{self.w}-{self.next_name}"
            self.next_name += 1
            self.uncertain.add(name)
            self.link.send({"jsonrpc": "2.0", "id": self._id(), "method": "teacher/load",
                            "params": {"name": name, "path": self.rng.choice(self.files["teachers"])}})
        else:
            self.link.send({"jsonrpc": "2.0", "id": self._id(), "method": "distill/diagnose",
                            "params": {"dataset": "pairs", "inputs": "inputs"}})
        self._reconnect()

    def op_drop_mid_message(self):
        self.link.sock.sendall(b'{"jsonrpc":"2.0","id":"half","method":"teacher/unl')
        self._reconnect()

    OPS = [("load", 5), ("unload", 3), ("score", 6), ("diagnose", 3), ("cancel", 3), ("fifo", 1),
           ("drop_mid_request", 1), ("drop_mid_message", 1)]

    def run(self):
        names = [n for n, k in self.OPS for _ in range(k)]
        try:
            while time.monotonic() < self.deadline:
                op = self.rng.choice(names)
                self._count(op)
                getattr(self, "op_" + op)()
                time.sleep(self.rng.uniform(0, 0.02))
            # A last round trip shows nothing else is pending on this connection.
            m = self.call("distilld/ping", {"payload": self.w})
            if m.get("result", {}).get("payload") != self.w:
                self.problems.append(f"client {self.w} final ping: {m}")
            self._check_link()
            self.link.close()
        except Exception as e:  # noqa: BLE001 - a client's failure is reported, not raised in a thread
            self.problems.append(f"client {self.w} stopped: {type(e).__name__}: {e}")


# ----------------------------------------------------------------------------- the pinger


def ping_loop(sock_path, seconds):
    link = Link(sock_path, timeout=30)
    deadline = time.monotonic() + seconds
    out, i = [], 0
    while time.monotonic() < deadline:
        i += 1
        t0 = time.perf_counter()
        link.send({"jsonrpc": "2.0", "id": i, "method": "distilld/ping", "params": {"payload": i}})
        m = link.wait(i)
        out.append((time.perf_counter() - t0) * 1000)
        assert m["result"]["payload"] == i
        time.sleep(0.01)
    link.close()
    return out


# ----------------------------------------------------------------------------- the run


def make_files(d):
    rng = np.random.default_rng(17)
    teachers = []
    for i in range(4):
        t = rng.standard_normal((16, 4, 50)).astype(np.float32)
        path = os.path.join(d, f"teacher{i}.npy")
        np.save(path, t)
        teachers.append(path)
    student = os.path.join(d, "student.npy")
    np.save(student, (rng.standard_normal((16, 4, 50)) * 1.2).astype(np.float32))
    pairs = os.path.join(d, "pairs.jsonl")
    with open(pairs, "w") as f:
        for i in range(40):
            f.write(json.dumps({"id": f"e{i}", "full": f"Context: fact number {i} is true.\nQ: fact {i}?",
                                "simplified": f"fact {i}?"}) + "\n")
    inputs = os.path.join(d, "inputs.txt")
    with open(inputs, "w") as f:
        for i in range(40):
            f.write(f"Context: fact number {i} is true.\nQ: fact {i}?\n".replace("\n", " ") + "\n")
    fifos = []
    for w in range(CLIENTS):
        path = os.path.join(d, f"fifo{w}.npy")
        os.mkfifo(path)
        fifos.append(path)
    return {"teachers": teachers, "student": student, "pairs": pairs, "inputs": inputs, "fifos": fifos}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def percentile(values, q):
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def run(binary, seconds, workdir, seed=1):
    """Runs the soak; returns the figures and what went wrong (the daemon is stopped afterwards)."""
    from catalogue_daemon import CatalogueDaemon

    files = make_files(workdir)
    dm = CatalogueDaemon(binary, workdir)
    try:
        for method, params in [("teacher/load", {"name": "base", "path": files["teachers"][0]}),
                               ("dataset/load", {"name": "pairs", "path": files["pairs"]}),
                               ("dataset/load", {"name": "inputs", "path": files["inputs"], "kind": "inputs"})]:
            r = dm.call(method, params)
            assert "result" in r, r
        status0 = dm.call("distilld/status")["result"]
        load_before = os.getloadavg()[0]
        pinger = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--ping", dm.sock_path, str(seconds)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        start = time.monotonic()
        deadline = start + seconds
        clients = [Client(w, dm.sock_path, files, deadline, seed * 1000 + w) for w in range(CLIENTS)]
        for c in clients:
            c.start()
        rss = []
        while any(c.is_alive() for c in clients) and time.monotonic() < deadline + 3 * REPLY_TIMEOUT:
            rss.append((time.monotonic() - start, rss_kib(dm.proc.pid)))
            time.sleep(0.25)
        for c in clients:
            c.join(1)
        hung = [c.w for c in clients if c.is_alive()]
        out, err = pinger.communicate(timeout=60)
        latencies = json.loads(out) if pinger.returncode == 0 else []
        problems = [p for c in clients for p in c.problems]
        if hung:
            problems.append(f"clients still waiting for a reply at the end: {hung}")
        if pinger.returncode != 0:
            problems.append(f"pinger failed: {err.decode(errors='replace')[-2000:]}")

        # Acknowledged entries: in teacher/list and in the workspace file, now and after a restart.
        expected, uncertain = set(), set()
        for c in clients:
            expected |= c.loaded
            uncertain |= c.uncertain
        listed = {t["name"] for t in dm.call("teacher/list")["result"]["teachers"]} - {"base"}
        saved = {t["name"] for t in json.loads(dm.workspace_bytes())["teachers"]} - {"base"}
        status1 = dm.call("distilld/status")["result"]
        dm.stop()
        dm2 = CatalogueDaemon(binary, workdir)
        try:
            reloaded = {t["name"] for t in dm2.call("teacher/list")["result"]["teachers"]} - {"base"}
        finally:
            dm2.stop()
        fifo = [x for c in clients for x in c.fifo_latencies]
        return {
            "clients": CLIENTS,
            "loadAverage": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "cores": os.cpu_count(),
            "seconds": seconds,
            "requests": sum(c.sent for c in clients) + len(latencies),
            "answered": sum(c.answered for c in clients) + len(latencies),
            "ops": {k: sum(c.counts.get(k, 0) for c in clients) for k, _ in Client.OPS},
            "pings": len(latencies),
            "pingP50Ms": percentile(latencies, 50),
            "pingP99Ms": percentile(latencies, 99),
            "pingMaxMs": max(latencies) if latencies else float("nan"),
            "rssKiB": rss,
            "rssStartKiB": rss[0][1] if rss else 0,
            "rssEndKiB": rss[-1][1] if rss else 0,
            "fifoLoads": len(fifo),
            "fifoBlocked": sum(c.fifo_blocked for c in clients),
            "fifoMaxSeconds": max(fifo) if fifo else 0.0,
            "expected": sorted(expected),
            "uncertain": sorted(uncertain),
            "listed": sorted(listed),
            "saved": sorted(saved),
            "reloaded": sorted(reloaded),
            "jsonLiveValues": [status0["json"]["liveValues"], status1["json"]["liveValues"]],
            "problems": problems,
        }
    finally:
        dm.stop()


def rss_growth_kib(rss, warmup_fraction=0.25):
    """Median RSS over the last quarter minus the median over the quarter after warm-up."""
    if len(rss) < 8:
        return 0
    end = rss[-1][0]
    after_warmup = [v for t, v in rss if warmup_fraction * end <= t < 0.5 * end]
    last = [v for t, v in rss if t >= 0.75 * end]
    return statistics.median(last) - statistics.median(after_warmup)


if __name__ == "__main__":
    if sys.argv[1] == "--ping":
        print(json.dumps(ping_loop(sys.argv[2], float(sys.argv[3]))))
    else:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        with tempfile.TemporaryDirectory(prefix="distilld-soak-") as d:
            figures = run(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else soak_seconds(), d)
        figures["rssGrowthKiB"] = rss_growth_kib(figures.pop("rssKiB"))
        for k in ("expected", "uncertain", "listed", "saved", "reloaded"):
            figures[k] = len(figures[k])
        print(json.dumps(figures, indent=1))
