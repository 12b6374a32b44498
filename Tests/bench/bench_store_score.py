"""Store and scoring benchmark (a benchmark, not a test: it prints figures, asserts nothing).

1. Loading a large teacher: a safetensors file of float32 logits (4 GiB by default,
   BENCH_TEACHER_GIB to change) is loaded by teacher/load. We print the load time
   (median of runs, file in the page cache) and the daemon's resident memory
   before and after: the file is memory-mapped, not copied.
2. Scoring a 4096 x 32000 student file against a loaded teacher (distill/score with
   {"path": ...}) next to a numpy script (and a PyTorch script when torch is
   importable) that reads the same files and computes the same forward KL.
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
sys.path.insert(0, os.path.join(HERE, "..", "..", "Clients", "python"))
from distilld import Client  # noqa: E402

BIN = os.environ.get("DISTILLD") or os.path.join(HERE, "..", "..", ".build", "release", "distilld")


def write_safetensors(path, name, shape, fill=None, rng=None):
    """Writes one float32 tensor in the safetensors layout, streaming row blocks."""
    n = int(np.prod(shape)) * 4
    header = json.dumps({name: {"dtype": "F32", "shape": list(shape), "data_offsets": [0, n]}}).encode()
    header += b" " * (-len(header) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        rows, cols = shape[0], int(np.prod(shape[1:]))
        block = max(1, (64 << 20) // (cols * 4))
        for start in range(0, rows, block):
            r = min(block, rows - start)
            if rng is not None:
                f.write((rng.standard_normal((r, cols), dtype=np.float32) * 3).tobytes())
            else:
                f.write(np.full((r, cols), fill or 0.0, dtype=np.float32).tobytes())


def rss_of(client):
    return client.call("distilld/status")["memory"]["residentBytes"]


def bench_load(tmp):
    gib = float(os.environ.get("BENCH_TEACHER_GIB", "4"))
    vocab = 32768
    rows = int(gib * (1 << 30) / 4 / vocab)
    path = os.path.join(tmp, "big-teacher.safetensors")
    t = time.perf_counter()
    write_safetensors(path, "logits", (rows, vocab), fill=0.5)
    size = os.path.getsize(path)
    print(f"\n## Loading a {size / (1 << 30):.2f} GiB teacher ({rows} x {vocab} float32 logits, safetensors)")
    print(f"   (file written in {time.perf_counter() - t:.1f} s; it is in the page cache, as after a training run writes it)")
    with Client.start(BIN, stderr=subprocess.DEVNULL) as d:
        before = rss_of(d)
        times = []
        for i in range(3):
            t = time.perf_counter()
            info = d.call("teacher/load", name="big", path=path, replace=True)
            times.append(time.perf_counter() - t)
        after = rss_of(d)
        print(f"   teacher/load median {statistics.median(times) * 1e3:.0f} ms (runs: {', '.join(f'{x * 1e3:.0f}' for x in times)} ms)")
        print(f"   mapped {info['mappedBytes'] / (1 << 30):.2f} GiB; daemon resident memory {before / (1 << 20):.0f} MiB before, "
              f"{after / (1 << 20):.0f} MiB after (+{(after - before) / (1 << 20):.0f} MiB)")
        print("json:", json.dumps({"bench": "teacher_load", "bytes": size, "median_s": statistics.median(times),
                                   "rss_before": before, "rss_after": after}))
    os.remove(path)


def numpy_forward_kl(t_path, s_path, tau):
    from safetensors.numpy import load_file
    zt = load_file(t_path)["logits"].astype(np.float32) / tau
    zs = load_file(s_path)["logits"].astype(np.float32) / tau
    zt = zt - zt.max(-1, keepdims=True)
    zs = zs - zs.max(-1, keepdims=True)
    lt = zt - np.log(np.exp(zt).sum(-1, keepdims=True))
    ls = zs - np.log(np.exp(zs).sum(-1, keepdims=True))
    return float((np.exp(lt) * (lt - ls)).sum(-1).mean())


def torch_forward_kl(t_path, s_path, tau):
    import torch
    from safetensors.torch import load_file
    torch.set_num_threads(os.cpu_count() or 1)
    zt = load_file(t_path)["logits"] / tau
    zs = load_file(s_path)["logits"] / tau
    kl = torch.nn.functional.kl_div(torch.log_softmax(zs, -1), torch.log_softmax(zt, -1), log_target=True, reduction="sum")
    return float(kl) / zt.shape[0]


def bench_score(tmp, n=4096, v=32000, tau=2.0, runs=5):
    rng = np.random.default_rng(7)
    t_path, s_path = os.path.join(tmp, "teacher.safetensors"), os.path.join(tmp, "student.safetensors")
    write_safetensors(t_path, "logits", (n, v), rng=rng)
    write_safetensors(s_path, "logits", (n, v), rng=rng)
    print(f"\n## distill/score: a {n} x {v} float32 student file against a loaded teacher, forward KL at tau = {tau}")
    rows = []
    with Client.start(BIN, stderr=subprocess.DEVNULL) as d:
        d.call("teacher/load", name="t", path=t_path)
        params = {"teacher": "t", "students": {"s": {"path": s_path}},
                  "loss": {"name": "forward_kl", "temperature": tau, "reduction": "mean"}, "perExample": False}
        d.call("distill/score", params)  # warm the page cache and the daemon
        times, value = [], None
        for _ in range(runs):
            t = time.perf_counter()
            value = d.call("distill/score", params)["students"][0]["loss"]
            times.append(time.perf_counter() - t)
        rows.append(("distilld (request round trip)", statistics.median(times), value))
    times = []
    for _ in range(max(2, runs // 2)):
        t = time.perf_counter()
        ref = numpy_forward_kl(t_path, s_path, tau)
        times.append(time.perf_counter() - t)
    rows.append(("numpy script (same files)", statistics.median(times), ref))
    try:
        import torch  # noqa: F401
        times = []
        for _ in range(max(2, runs // 2)):
            t = time.perf_counter()
            tv = torch_forward_kl(t_path, s_path, tau)
            times.append(time.perf_counter() - t)
        rows.append((f"PyTorch CPU script ({os.cpu_count()} threads)", statistics.median(times), tv))
    except ImportError:
        rows.append(("PyTorch CPU script", None, None))
    base = rows[0][1]
    gb = 2 * n * v * 4 / 1e9
    print(f"   {'who':<40}{'median':>10}{'GB/s':>8}{'rows/s':>12}{'vs distilld':>13}   loss")
    for who, sec, val in rows:
        if sec is None:
            print(f"   {who:<40}{'n/a (torch not importable)':>43}")
            continue
        print(f"   {who:<40}{sec * 1e3:>8.0f} ms{gb / sec:>8.2f}{n / sec:>12,.0f}{sec / base:>12.1f}x   {val:.6f}")
        print("json:", json.dumps({"bench": "score_file", "who": who, "median_s": sec, "loss": val}))


def main():
    print(f"store and score benchmark ({BIN})")
    with tempfile.TemporaryDirectory(prefix="distilld-bench-", dir=os.environ.get("BENCH_TMP")) as tmp:
        bench_score(tmp)
        bench_load(tmp)


if __name__ == "__main__":
    main()
