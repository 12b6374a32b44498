"""Times numpy/scipy (and PyTorch CPU, 2 threads, if importable) on the .npy
files written by `distill-bench-kernels --npy-dir DIR`, printing JSON lines in
the same format ("JSON {...}") and the ratio to the Swift results when a file
of Swift JSON lines is given.

usage: python3 bench_kernels_reference.py DIR [--n ROWS_IN_FILE] [--v 32000] [--rows 1024] [--runs 3] [--tau 2]
                                          [--impls numpy,torch] [--swift swift.jsonl]

Files: teacher_{n}_{v}.npy, student_{n}_{v}.npy (float32 [n, v]) and, if
present, labels_{n}_{v}.npy (int64 [n, 1]) as written by
`distill-bench-kernels --npy-dir DIR --npy-rows n`.
"""
import argparse, json, os, sys, time
import numpy as np
from scipy.special import log_softmax


def median_time(fn, runs):
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def numpy_losses(zt, zs, tau):
    def fkl():
        lp = log_softmax(zt / tau, axis=-1); lq = log_softmax(zs / tau, axis=-1)
        return (np.exp(lp) * (lp - lq)).sum(-1).mean()
    def rkl():
        lp = log_softmax(zt / tau, axis=-1); lq = log_softmax(zs / tau, axis=-1)
        return (np.exp(lq) * (lq - lp)).sum(-1).mean()
    def jsd():
        p = np.exp(log_softmax(zt / tau, axis=-1)); q = np.exp(log_softmax(zs / tau, axis=-1))
        m = 0.5 * (p + q); lm = np.log(m)
        return (0.5 * (p * (np.log(p) - lm)).sum(-1) + 0.5 * (q * (np.log(q) - lm)).sum(-1)).mean()
    def tvd():
        p = np.exp(log_softmax(zt / tau, axis=-1)); q = np.exp(log_softmax(zs / tau, axis=-1))
        return 0.5 * np.abs(p - q).sum(-1).mean()
    def skew_kl(alpha=0.1):
        lp = log_softmax(zt / tau, axis=-1); lq = log_softmax(zs / tau, axis=-1)
        p = np.exp(lp); m = alpha * p + (1 - alpha) * np.exp(lq)
        return (p * (lp - np.log(m))).sum(-1).mean()
    def ce():
        lp = log_softmax(zt / tau, axis=-1); lq = log_softmax(zs / tau, axis=-1)
        return -(np.exp(lp) * lq).sum(-1).mean()
    def prob_mse():
        p = np.exp(log_softmax(zt / tau, axis=-1)); q = np.exp(log_softmax(zs / tau, axis=-1))
        return ((p - q) ** 2).mean(-1).mean()
    def logit_mse():
        return (((zt - zs) / tau) ** 2).mean(-1).mean()
    return {"forward_kl": fkl, "reverse_kl": rkl, "jsd": jsd, "skew_kl": skew_kl, "tvd": tvd,
            "cross_entropy": ce, "prob_mse": prob_mse, "logit_mse": logit_mse}


def torch_losses(zt, zs, tau):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(2)
    t, s = torch.from_numpy(zt), torch.from_numpy(zs)
    def fkl():
        with torch.no_grad():
            return F.kl_div(F.log_softmax(s / tau, -1), F.log_softmax(t / tau, -1), log_target=True, reduction="batchmean").item()
    def rkl():
        with torch.no_grad():
            return F.kl_div(F.log_softmax(t / tau, -1), F.log_softmax(s / tau, -1), log_target=True, reduction="batchmean").item()
    def jsd():
        with torch.no_grad():
            lp = F.log_softmax(t / tau, -1); lq = F.log_softmax(s / tau, -1)
            lm = torch.logsumexp(torch.stack([lp, lq]), 0) - np.log(2)
            return (0.5 * F.kl_div(lm, lp, log_target=True, reduction="batchmean") + 0.5 * F.kl_div(lm, lq, log_target=True, reduction="batchmean")).item()
    def tvd():
        with torch.no_grad():
            return 0.5 * (F.softmax(t / tau, -1) - F.softmax(s / tau, -1)).abs().sum(-1).mean().item()
    def skew_kl(alpha=0.1):
        with torch.no_grad():
            lp = F.log_softmax(t / tau, -1); lq = F.log_softmax(s / tau, -1)
            lm = torch.logaddexp(lp + np.log(alpha), lq + np.log(1 - alpha))
            return F.kl_div(lm, lp, log_target=True, reduction="batchmean").item()
    def ce():
        with torch.no_grad():
            return -(F.softmax(t / tau, -1) * F.log_softmax(s / tau, -1)).sum(-1).mean().item()
    def prob_mse():
        with torch.no_grad():
            return ((F.softmax(t / tau, -1) - F.softmax(s / tau, -1)) ** 2).mean().item()
    def logit_mse():
        with torch.no_grad():
            return (((t - s) / tau) ** 2).mean().item()
    return {"forward_kl": fkl, "reverse_kl": rkl, "jsd": jsd, "skew_kl": skew_kl, "tvd": tvd,
            "cross_entropy": ce, "prob_mse": prob_mse, "logit_mse": logit_mse}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir"); ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--v", type=int, default=32000); ap.add_argument("--rows", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3); ap.add_argument("--tau", type=float, default=2.0)
    ap.add_argument("--impls", default="numpy,torch", help="comma list of numpy,torch")
    ap.add_argument("--swift", help="file with the Swift bench output (JSON lines)")
    a = ap.parse_args()
    zt_all = np.load(os.path.join(a.dir, f"teacher_{a.n}_{a.v}.npy"), mmap_mode="r")
    zs_all = np.load(os.path.join(a.dir, f"student_{a.n}_{a.v}.npy"), mmap_mode="r")
    rows = min(a.rows, zt_all.shape[0])
    zt = np.ascontiguousarray(zt_all[:rows]); zs = np.ascontiguousarray(zs_all[:rows])
    swift = {}
    if a.swift:
        for line in open(a.swift):
            if line.startswith("JSON "):
                d = json.loads(line[5:])
                if d.get("v") == a.v and "rows_per_s" in d:
                    swift[d["op"]] = d["rows_per_s"]
    wanted = set(a.impls.split(","))
    impls = [("numpy", numpy_losses)] if "numpy" in wanted else []
    if "torch" in wanted:
        try:
            import torch  # noqa: F401
            impls.append(("torch", torch_losses))
        except Exception as e:
            print(f"torch not available: {e}", file=sys.stderr)
            print("JSON " + json.dumps({"impl": "torch", "op": "unavailable", "v": a.v, "error": str(e)}))
    bytes_ = 2 * rows * a.v * 4
    for impl, make in impls:
        for op, fn in make(zt, zs, a.tau).items():
            value = fn()
            m = median_time(fn, a.runs)
            rps = rows / m
            rec = {"impl": impl, "op": op, "n": rows, "v": a.v, "tau": a.tau, "median_s": m,
                   "gbps": bytes_ / m / 1e9, "rows_per_s": rps, "value": float(value)}
            if op in swift:
                rec["swift_speedup"] = swift[op] / rps
            print("JSON " + json.dumps(rec))
            extra = f"  swift is {rec['swift_speedup']:.1f}x faster" if "swift_speedup" in rec else ""
            print(f"{impl:6s} {op:12s} {m*1e3:9.1f} ms for {rows} rows  {rps:9.0f} rows/s{extra}")


if __name__ == "__main__":
    main()
