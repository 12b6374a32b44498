#!/usr/bin/env python3
"""One-shot kernel benchmark: distilld (Swift) vs numpy/scipy vs PyTorch CPU.

For each vocabulary size it
  (a) runs the release `distill-bench-kernels` binary (path from env
      DISTILL_BENCH_KERNELS, default .build/release/distill-bench-kernels),
      which generates the logits, times every loss on all cores and writes the
      first --py-rows rows as .npy files into a temporary directory;
  (b) times numpy/scipy and PyTorch CPU (torch.set_num_threads = cores) on those
      same files with Tests/bench/bench_kernels_reference.py, in this run;
  (c) prints one combined table per V.

PyTorch is used when `import torch` works in this interpreter; otherwise, if env
DISTILL_BENCH_TORCH_PYTHON names another interpreter that has torch, that one is
used for the torch column; else the column reads n/a. Nothing is installed.

numpy/torch run on fewer rows than distilld (they need several full-size
temporaries per call); their times are scaled to distilld's N rows (linear in
rows) and marked "~". Speed-ups compare rows per second.

usage: python3 Tests/bench/bench_kernels.py [--n 4096] [--v 32000,151936] [--runs 9]
          [--py-rows auto] [--py-runs 3] [--tau 2] [--max-gb 12] [--json out.jsonl]
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "bench_kernels_reference.py")
DEFAULT_BIN = os.path.join(HERE, "..", "..", ".build", "release", "distill-bench-kernels")


def json_lines(text):
    out = []
    for line in text.splitlines():
        if line.startswith("JSON "):
            try:
                out.append(json.loads(line[5:]))
            except json.JSONDecodeError:
                pass
    return out


def run(cmd, env=None, echo=True):
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if echo:
        for line in p.stdout.splitlines():
            if not line.startswith("JSON "):
                print("  | " + line)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit(f"command failed ({p.returncode}): {' '.join(cmd)}")
    return p.stdout, p.stderr, time.time() - t0


def torch_available(python):
    try:
        return subprocess.run([python, "-c", "import torch"], capture_output=True).returncode == 0
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--v", default="32000,151936")
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--tau", type=float, default=2.0)
    ap.add_argument("--py-rows", default="auto", help="rows for numpy/torch (auto: 1024 for V<=64000, else 256)")
    ap.add_argument("--py-runs", type=int, default=3)
    ap.add_argument("--max-gb", type=float, default=12.0)
    ap.add_argument("--json", help="also write all JSON records to this file")
    a = ap.parse_args()

    binary = os.environ.get("DISTILL_BENCH_KERNELS", DEFAULT_BIN)
    if not os.path.exists(binary):
        raise SystemExit(f"{binary} not found: build with `swift build -c release` or set DISTILL_BENCH_KERNELS")
    cores = os.cpu_count() or 1
    torch_py = None
    if torch_available(sys.executable):
        torch_py = sys.executable
    elif os.environ.get("DISTILL_BENCH_TORCH_PYTHON") and torch_available(os.environ["DISTILL_BENCH_TORCH_PYTHON"]):
        torch_py = os.environ["DISTILL_BENCH_TORCH_PYTHON"]
    print(f"binary: {binary}\npython: {sys.executable} (numpy/scipy)\n"
          f"torch: {torch_py or 'n/a (import torch fails; set DISTILL_BENCH_TORCH_PYTHON to use another interpreter)'}")

    records = []
    tables = []
    t_start = time.time()
    for v in [int(x) for x in a.v.split(",")]:
        py_rows = (1024 if v <= 64000 else 256) if a.py_rows == "auto" else int(a.py_rows)
        tmp = tempfile.mkdtemp(prefix=f"distill-bench-{v}-")
        try:
            print(f"\n== V={v}: distill-bench-kernels (N={a.n}, runs={a.runs}) ==")
            out, _, _ = run([binary, "--n", str(a.n), "--v", str(v), "--runs", str(a.runs), "--tau", str(a.tau),
                             "--npy-dir", tmp, "--npy-rows", str(py_rows), "--max-gb", str(a.max_gb)])
            sw = json_lines(out)
            records += sw
            n = next((r["n"] for r in sw if r.get("op") == "read"), a.n)
            rows = next((r["rows"] for r in sw if r.get("op") == "npy"), py_rows)
            read = next((r["gbps"] for r in sw if r.get("op") == "read"), None)
            swift = {r["op"]: r for r in sw if "median_s" in r}
            ref = [sys.executable, REF, tmp, "--n", str(rows), "--v", str(v), "--rows", str(rows),
                   "--runs", str(a.py_runs), "--tau", str(a.tau)]
            print(f"== V={v}: numpy/scipy on {rows} rows ==")
            out, _, _ = run(ref + ["--impls", "numpy" if torch_py != sys.executable else "numpy,torch"])
            py = json_lines(out)
            if torch_py and torch_py != sys.executable:
                print(f"== V={v}: torch ({torch_py}) on {rows} rows ==")
                out, _, _ = run([torch_py] + ref[1:] + ["--impls", "torch"])
                py += json_lines(out)
            records += py
            ref_by = {(r["impl"], r["op"]): r for r in py if "median_s" in r}
            tables.append((v, n, rows, read, swift, ref_by))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    for v, n, rows, read, swift, ref_by in tables:
        print(f"\nV={v}  N={n} rows, tau={a.tau}, {cores} threads; plain read bandwidth "
              f"{read:.1f} GB/s; numpy/torch timed on {rows} rows, '~' = scaled to {n} rows")
        hdr = f"{'loss':16s} {'distilld ms':>11s} {'GB/s':>6s} {'x read bw':>9s} {'x fwd KL':>8s} " \
              f"{'numpy ms':>10s} {'torch ms':>10s} {'vs numpy':>8s} {'vs torch':>8s}"
        print(hdr)
        print("-" * len(hdr))
        for op, r in swift.items():
            cols = [f"{op:16s}", f"{r['median_s'] * 1e3:11.1f}", f"{r['gbps']:6.2f}", f"{r['ratio_to_read']:9.2f}",
                    f"{r['ratio_to_forward_kl']:8.2f}" if r.get("ratio_to_forward_kl") is not None else f"{'n/a':>8s}"]
            ms, sp = [], []
            for impl in ("numpy", "torch"):
                x = ref_by.get((impl, op))
                if x:
                    ms.append(f"~{x['median_s'] * n / x['n'] * 1e3:9.0f}")
                    sp.append(f"{r['rows_per_s'] / x['rows_per_s']:7.1f}x")
                else:
                    ms.append(f"{'n/a':>10s}")
                    sp.append(f"{'n/a':>8s}")
            print(" ".join(cols + ms + sp))
    print(f"\ntotal bench time {time.time() - t_start:.0f} s")
    if a.json:
        with open(a.json, "w") as f:
            for r in records:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
