"""Sharded scoring on Ray (distilld.ray): scaling from 1 to 2 workers and the cost of a shard.
A benchmark, not a test: it prints figures and asserts nothing. Skipped (with a line saying so)
when Ray is not importable.

1. One teacher file and one student file (BENCH_RAY_ROWS x 32000 float32 logits, 1024 rows by
   default: 131 MB each) scored with forward KL by one daemon directly, then by distilld.ray with
   1 worker and with 2 workers (2 shards each), from files in the page cache. One daemon already
   scores rows on every core, so on one machine a second worker adds no cores: the ratio shows what
   Ray costs. The merge is exact, so the three losses are equal.
2. Per-shard overhead: a 16-example file split into 16 one-example shards on 1 worker, against
   one request for the whole file: the difference per shard is what each shard costs beyond its
   work (a Ray task round trip, the request and its reply, the merge).
"""

import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENTS = os.path.join(HERE, "..", "..", "Clients", "python")
sys.path.insert(0, CLIENTS)
from distilld import Client  # noqa: E402

BIN = os.path.abspath(os.environ.get("DISTILLD") or os.path.join(HERE, "..", "..", ".build", "release", "distilld"))


def write_logits(path, rows, vocab, rng):
    n = rows * vocab * 4
    header = json.dumps({"logits": {"dtype": "F32", "shape": [rows, vocab], "data_offsets": [0, n]}}).encode()
    header += b" " * (-len(header) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        for start in range(0, rows, 256):
            f.write((rng.standard_normal((min(256, rows - start), vocab), dtype=np.float32) * 3).tobytes())


def median_time(fn, runs):
    times, value = [], None
    for _ in range(runs):
        t = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), value


def main():
    try:
        import ray
    except ImportError:
        print("\n## Sharded scoring on Ray: skipped (ray is not importable; pip install ray==2.60.0)")
        return
    from distilld.ray import WorkerPool, score_sharded

    rows, vocab, runs = int(os.environ.get("BENCH_RAY_ROWS", "1024")), 32000, 5
    tmp = tempfile.mkdtemp(prefix="bench-ray-")
    rng = np.random.default_rng(15)
    t_path, s_path = os.path.join(tmp, "teacher.safetensors"), os.path.join(tmp, "student.safetensors")
    write_logits(t_path, rows, vocab, rng)
    write_logits(s_path, rows, vocab, rng)
    tiny_t, tiny_s = os.path.join(tmp, "tiny-t.safetensors"), os.path.join(tmp, "tiny-s.safetensors")
    write_logits(tiny_t, 16, 64, rng)
    write_logits(tiny_s, 16, 64, rng)
    loss = {"name": "forward_kl", "reduction": "mean"}

    os.environ["PYTHONPATH"] = os.path.abspath(CLIENTS) + os.pathsep + os.environ.get("PYTHONPATH", "")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 << 20, log_to_driver=False,
             configure_logging=False)
    started = time.perf_counter() - t
    print(f"\n## Sharded scoring on Ray: {rows} x {vocab} float32 logits per file "
          f"({2 * rows * vocab * 4 / 1e6:.0f} MB read per job), forward KL, {os.cpu_count()} CPUs")
    print(f"   local Ray started in {started:.1f} s")
    rows_out = []
    with Client.start(BIN, stderr=subprocess.DEVNULL) as d:
        params = {"teacher": {"path": t_path}, "students": {"s": {"path": s_path}}, "loss": loss}
        d.call("distill/score", params)  # page cache
        sec, r = median_time(lambda: d.call("distill/score", params), runs)
        rows_out.append(("one daemon, one request", sec, r["students"][0]["loss"], None))
        tiny = {"teacher": {"path": tiny_t}, "students": {"s": {"path": tiny_s}}, "loss": loss}
        tiny_one, _ = median_time(lambda: d.call("distill/score", tiny), 5)
    figures = {}
    for workers in (1, 2):
        t = time.perf_counter()
        pool = WorkerPool(workers, binary=BIN)
        pool_start = time.perf_counter() - t
        job = lambda: score_sharded(t_path, {"s": s_path}, None, loss, shards=2, workers=pool)  # noqa: E731
        job()
        sec, r = median_time(job, runs)
        rows_out.append((f"distilld.ray, {workers} worker(s), 2 shards", sec, r["students"][0]["loss"], r["bytesMoved"]))
        figures[workers] = {"seconds": sec, "pool_start_s": pool_start}
        if workers == 1:
            score_sharded(tiny_t, {"s": tiny_s}, None, loss, shards=16, workers=pool)
            tiny_sharded, _ = median_time(
                lambda: score_sharded(tiny_t, {"s": tiny_s}, None, loss, shards=16, workers=pool), 5)
        pool.close()
    base = rows_out[0][1]
    print(f"   {'who':<42}{'median':>10}{'vs one daemon':>15}{'bytes to / from workers':>26}   loss")
    for who, sec, value, moved in rows_out:
        b = f"{moved['toWorkers']:,} / {moved['fromWorkers']:,}" if moved else "-"
        print(f"   {who:<42}{sec * 1e3:>7.0f} ms{sec / base:>14.2f}x{b:>26}   {value!r}")
    scaling = figures[1]["seconds"] / figures[2]["seconds"]
    per_shard = (tiny_sharded - tiny_one) / 16
    print(f"   scaling 1 -> 2 workers: {scaling:.2f}x (pool start: {figures[1]['pool_start_s']:.1f} s for 1, "
          f"{figures[2]['pool_start_s']:.1f} s for 2)")
    print(f"   per-shard overhead: {per_shard * 1e3:.1f} ms (16 one-example shards on 1 worker "
          f"{tiny_sharded * 1e3:.0f} ms, one request {tiny_one * 1e3:.1f} ms)")
    print(f"   (one daemon already scores rows on all {os.cpu_count()} CPUs: on one machine a second worker "
          "adds no cores, so the scaling here is Ray's cost; workers on more nodes add theirs)")
    print("json:", json.dumps({"bench": "ray_sharded_score", "rows": rows, "vocab": vocab, "one_daemon_s": base,
                               "workers_1_s": figures[1]["seconds"], "workers_2_s": figures[2]["seconds"],
                               "scaling": scaling, "per_shard_overhead_s": per_shard, "ray_start_s": started}))
    ray.shutdown()
    for p in (t_path, s_path, tiny_t, tiny_s):
        os.remove(p)
    os.rmdir(tmp)


if __name__ == "__main__":
    main()
