"""Protocol benchmark: round-trip latency and throughput of a small request over stdio,
in both framings. A benchmark, not a test: it prints figures and asserts nothing.

Latency: one request at a time, wait for the reply (median and p99 of N round trips).
Throughput: a pipelined burst (the client writes while a thread reads), requests per second.
"""

import json
import os
import statistics
import subprocess
import sys
import threading
import time

BIN = os.environ.get("DISTILLD") or os.path.join(os.path.dirname(__file__), "..", "..", ".build", "release", "distilld")


def frame(body: bytes, framing: str) -> bytes:
    return body + b"\n" if framing == "lines" else b"Content-Length: %d\r\n\r\n" % len(body) + body


class Reader:
    def __init__(self, stream, framing):
        self.stream, self.framing, self.buf = stream, framing, b""

    def _fill(self):
        chunk = os.read(self.stream.fileno(), 1 << 16)
        if not chunk:
            raise EOFError
        self.buf += chunk

    def read(self):
        if self.framing == "lines":
            while b"\n" not in self.buf:
                self._fill()
            line, _, self.buf = self.buf.partition(b"\n")
            return line
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        n = int(head.split(b":")[1])
        while len(rest) < n:
            self._fill()
            head, _, rest = self.buf.partition(b"\r\n\r\n")
        self.buf = rest[n:]
        return rest[:n]


def run(framing: str, latency_n=2000, burst_n=20000, repeats=5):
    p = subprocess.Popen([BIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    r = Reader(p.stdout, framing)
    msg = frame(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "distilld/ping", "params": {"payload": "x"}}).encode(), framing)
    for _ in range(200):  # warm up
        p.stdin.write(msg)
        r.read()
    lat = []
    for _ in range(latency_n):
        t = time.perf_counter()
        p.stdin.write(msg)
        r.read()
        lat.append(time.perf_counter() - t)
    rates = []
    for _ in range(repeats):
        data = msg * burst_n

        def writer():
            p.stdin.write(data)

        t = time.perf_counter()
        w = threading.Thread(target=writer)
        w.start()
        for _ in range(burst_n):
            r.read()
        w.join()
        rates.append(burst_n / (time.perf_counter() - t))
    p.stdin.close()
    p.wait(10)
    lat.sort()
    return {
        "framing": framing,
        "latency_median_us": statistics.median(lat) * 1e6,
        "latency_p99_us": lat[int(len(lat) * 0.99)] * 1e6,
        "pipelined_requests_per_s_median": statistics.median(rates),
    }


def large_message(framing: str, megabytes=16, repeats=3):
    """Seconds from the first byte of one large request to its reply (median of repeats).
    The request carries an array of reals, as a numpy array sent inline would; ping ignores it
    and answers briefly, so the figure is reading and parsing."""
    count = megabytes * (1 << 20) // 20
    body = b'{"jsonrpc":"2.0","id":1,"method":"distilld/ping","params":{"blob":[%s]}}' % ",".join(
        ["0.1234567890123456"] * count).encode()
    msg = frame(body, framing)
    p = subprocess.Popen([BIN, "--max-message-bytes", str(2 * len(msg))], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    r = Reader(p.stdout, framing)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        w = threading.Thread(target=p.stdin.write, args=(msg,))
        w.start()
        r.read()
        w.join()
        times.append(time.perf_counter() - t)
    p.stdin.close()
    p.wait(30)
    return statistics.median(times)


def mcp_overhead(n=2000):
    """What the MCP face adds to a call: teacher/info on the demo teacher as a JSON-RPC request and
    as the MCP tool teacher_info (2026-07-28, `_meta` on every request), one at a time, median and
    p99 round trip; and tools/list, whose definitions are built on first use and re-sent each time."""
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
    rows = {}
    for label, request in [
        ("json-rpc teacher/info", {"method": "teacher/info", "params": {"name": "demo"}}),
        ("mcp tools/call teacher_info", {"method": "tools/call",
                                         "params": {"_meta": meta, "name": "teacher_info", "arguments": {"name": "demo"}}}),
    ]:
        p = subprocess.Popen([BIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        r = Reader(p.stdout, "lines")
        p.stdin.write(frame(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "teacher/load",
                                        "params": {"name": "demo", "path": "builtin:demo"}}).encode(), "lines"))
        r.read()
        msg = frame(json.dumps({"jsonrpc": "2.0", "id": 1, **request}).encode(), "lines")
        lat = []
        for i in range(200 + n):
            t = time.perf_counter()
            p.stdin.write(msg)
            r.read()
            if i >= 200:
                lat.append(time.perf_counter() - t)
        lat.sort()
        rows[label] = (statistics.median(lat) * 1e6, lat[int(len(lat) * 0.99)] * 1e6)
        if label.startswith("mcp"):
            listing = frame(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": meta}}).encode(), "lines")
            times = []
            for _ in range(20):
                t = time.perf_counter()
                p.stdin.write(listing)
                size = len(r.read())
                times.append(time.perf_counter() - t)
            rows["mcp tools/list"] = (statistics.median(times) * 1e6, max(times) * 1e6)
        p.stdin.close()
        p.wait(10)
    return rows, size


def main():
    print(f"protocol benchmark: distilld/ping over stdio ({BIN})")
    print(f"{'framing':<16}{'median RTT':>14}{'p99 RTT':>12}{'pipelined req/s':>18}")
    for framing in ("lines", "content-length"):
        res = run(framing)
        print(f"{framing:<16}{res['latency_median_us']:>11.1f} µs{res['latency_p99_us']:>9.1f} µs"
              f"{res['pipelined_requests_per_s_median']:>18,.0f}")
        print("json:", json.dumps(res))
    # A long line used to be searched for its newline once per read: quadratic in its size.
    for framing in ("lines", "content-length"):
        seconds = large_message(framing)
        print(f"16 MB request, {framing:<16}{seconds:>8.2f} s")
        print("json:", json.dumps({"framing": framing, "large_message_mb": 16, "seconds": seconds}))
    rows, listing_bytes = mcp_overhead()
    print(f"{'MCP (lines)':<30}{'median RTT':>14}{'p99 / max':>12}")
    for label, (median, tail) in rows.items():
        print(f"{label:<30}{median:>11.1f} µs{tail:>9.1f} µs")
    print("json:", json.dumps({"mcp": {k: {"median_us": m, "tail_us": t} for k, (m, t) in rows.items()},
                               "tools_list_bytes": listing_bytes}))


if __name__ == "__main__":
    sys.exit(main())
