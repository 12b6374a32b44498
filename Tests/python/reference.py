"""Independent float64 reference for the distilld loss engine.

Written from the formulas (see DistillMath's doc comments), not from the Swift
code. Everything is numpy/scipy in float64. Arrays: dense values [N, T, V];
top-k as a dict {"indices": [N,T,K], "values": [N,T,K]}; mask [N, T] (nonzero =
valid); labels [N, T] (negative = ignored).

config keys: name, temperature (or teacher_temperature / student_temperature),
scale_by_squared_temperature, alpha, beta, reduction, tail_policy
("renormalize" | "tail_bucket"), renormalize.
"""
import numpy as np
from scipy.special import log_softmax, xlogy, logsumexp

LN2 = np.log(2.0)


def _cfg(config):
    c = dict(config)
    tau = float(c.get("temperature", 1.0))
    c.setdefault("teacher_temperature", tau)
    c.setdefault("student_temperature", tau)
    name = c["name"]
    if name == "hinton":
        name = c["name"] = "combined"
    c.setdefault("scale_by_squared_temperature", name == "combined")
    c.setdefault("alpha", 0.5 if name == "combined" else 0.1)
    c.setdefault("beta", 0.5)
    c.setdefault("reduction", "mean")
    c.setdefault("tail_policy", "renormalize")
    return c


def log_dist(values, kind, tau):
    """log softmax(log-values / tau) along the last axis (probs are divided by their sum)."""
    x = np.asarray(values, dtype=np.float64)
    if kind == "probs":
        with np.errstate(divide="ignore"):
            x = np.log(x / x.sum(axis=-1, keepdims=True))
    return log_softmax(x / tau, axis=-1)


def kl(lp, lq):
    """KL(p||q) from log-probs along the last axis; 0 log 0 = 0, +inf if q = 0 < p."""
    p = np.exp(lp)
    with np.errstate(invalid="ignore"):
        terms = np.where(p > 0, p * (lp - lq), 0.0)
    return terms.sum(axis=-1)


def entropy(lp):
    return -xlogy(np.exp(lp), np.exp(lp)).sum(axis=-1)


def _mixture_kl(lp, lq, w):
    """(KL(p||m), KL(q||m)) with m = w p + (1-w) q."""
    # log m by logaddexp: w*p underflows to 0 for tiny p (small tau), and log 0
    # would make a finite divergence infinite.
    with np.errstate(divide="ignore"):
        lm = np.logaddexp(np.log(w) + lp, np.log1p(-w) + lq)
    return kl(lp, lm), kl(lq, lm)


def divergence(name, lp, lq, alpha=0.1, beta=0.5):
    """Per-row loss between distributions given as log-probs (last axis)."""
    p, q = np.exp(lp), np.exp(lq)
    if name == "forward_kl":
        return kl(lp, lq)
    if name == "reverse_kl":
        return kl(lq, lp)
    if name == "jsd":
        a, b = _mixture_kl(lp, lq, 0.5)
        return 0.5 * a + 0.5 * b
    if name == "generalized_jsd":
        a, b = _mixture_kl(lp, lq, beta)
        # Continuous in beta: 0 at beta = 0 and 1 (TRL jumps to forward/reverse KL there; we do not).
        return (beta * a if beta > 0 else 0.0) + ((1 - beta) * b if beta < 1 else 0.0)
    if name == "skew_kl":
        return _mixture_kl(lp, lq, alpha)[0]
    if name == "skew_reverse_kl":
        return _mixture_kl(lp, lq, 1 - alpha)[1]
    if name == "tvd":
        return 0.5 * np.abs(p - q).sum(axis=-1)
    if name == "cross_entropy":
        return entropy(lp) + kl(lp, lq)
    if name == "prob_mse":
        return ((p - q) ** 2).mean(axis=-1)
    raise ValueError(f"unknown loss {name}")


def _topk_log(entry, kind, tau, policy, union, vocab_index_map, dense_lp=None):
    """Log-probs of one row over `union` (+ tail bucket) for one side."""
    n = len(union) + (1 if policy == "tail_bucket" else 0)
    out = np.full(n, -np.inf)
    if dense_lp is not None:
        sel = dense_lp[union]
        mass = np.exp(sel).sum()
        if policy == "renormalize":
            out[: len(union)] = sel - np.log(mass)
        else:
            out[: len(union)] = sel
            out[-1] = np.log1p(-mass) if mass < 1 else -np.inf
        return out, max(0.0, 1 - mass)
    idx, vals = entry
    ell = np.asarray(vals, np.float64)
    if kind == "probs":
        with np.errstate(divide="ignore"):
            ell = np.log(ell)
    tail = 0.0 if kind == "logits" else max(0.0, 1 - np.exp(ell).sum())
    w = ell / tau
    logs = list(w)
    if policy == "tail_bucket":
        with np.errstate(divide="ignore"):
            logs.append(np.log(tail) / tau if tail > 0 else -np.inf)
    logs = np.array(logs)
    logz = logsumexp(logs)
    for k, i in enumerate(idx):
        out[vocab_index_map[int(i)]] = logs[k] - logz
    if policy == "tail_bucket":
        out[-1] = logs[-1] - logz
        share = np.exp(logs[-1] - logz)
    else:
        share = (tail ** (1 / tau)) * np.exp(-logz) / (1 + (tail ** (1 / tau)) * np.exp(-logz)) if tail > 0 else 0.0
    return out, share


def per_position(teacher, student, config, teacher_kind="logits", student_kind="logits", mask=None, labels=None):
    """Per-position losses [N, T] (0 where invalid) and the validity mask."""
    c = _cfg(config)
    name, tt, ts = c["name"], c["teacher_temperature"], c["student_temperature"]
    scale = tt * ts if c["scale_by_squared_temperature"] else 1.0
    s_top = isinstance(student, dict)
    t_top = isinstance(teacher, dict)
    ref = student["values"] if s_top else student
    N, T = ref.shape[:2]
    valid = np.ones((N, T), bool) if mask is None else (np.asarray(mask) != 0)
    if name in ("nll", "combined"):
        lab = np.asarray(labels)
        valid &= lab >= 0
    out = np.zeros((N, T))
    if name == "logit_mse":
        d = np.asarray(teacher, np.float64) / tt - np.asarray(student, np.float64) / ts
        with np.errstate(invalid="ignore"):
            sq = np.where(np.isnan(d), 0.0, d * d)
        out = scale * sq.mean(axis=-1)
        return np.where(valid, out, 0.0), valid
    if name == "nll":
        lq1 = log_dist(student, student_kind, ts)
        for n in range(N):
            for t in range(T):
                if valid[n, t]:
                    out[n, t] = -lq1[n, t, lab[n, t]]
        return out, valid
    if not t_top and not s_top:
        lp = log_dist(teacher, teacher_kind, tt)
        lq = log_dist(student, student_kind, ts)
        soft = divergence("forward_kl" if name == "combined" else name, lp, lq, c["alpha"], c["beta"])
    else:
        soft = np.zeros((N, T))
        lpd = None if t_top else log_dist(teacher, teacher_kind, tt)
        lqd = None if s_top else log_dist(student, student_kind, ts)
        for n in range(N):
            for t in range(T):
                if not valid[n, t]:
                    continue
                ti = (teacher["indices"][n, t], teacher["values"][n, t]) if t_top else None
                si = (student["indices"][n, t], student["values"][n, t]) if s_top else None
                union = sorted(set(ti[0].tolist() if ti else []) | set(si[0].tolist() if si else []))
                m = {v: k for k, v in enumerate(union)}
                vocab = lpd.shape[-1] if not t_top else lqd.shape[-1] if not s_top else teacher.get("vocab")
                # When the known indices cover the vocabulary nothing lies outside them: no bucket,
                # and a top-k side's rounding residue is renormalised away.
                policy = "renormalize" if len(union) == vocab else c["tail_policy"]
                a, _ = _topk_log(ti, teacher_kind, tt, policy, union, m, None if t_top else lpd[n, t])
                b, _ = _topk_log(si, student_kind, ts, policy, union, m, None if s_top else lqd[n, t])
                soft[n, t] = divergence("forward_kl" if name == "combined" else name, a, b, c["alpha"], c["beta"])
    if name == "combined":
        lq1 = log_dist(student, student_kind, 1.0)
        hard = np.zeros((N, T))
        for n in range(N):
            for t in range(T):
                if valid[n, t]:
                    hard[n, t] = -lq1[n, t, lab[n, t]]
        a = c["alpha"]
        out = (a * hard if a > 0 else 0.0) + ((1 - a) * scale * soft if a < 1 else 0.0)
    else:
        out = scale * soft
    return np.where(valid, out, 0.0), valid


def reduce(per_pos, valid, reduction):
    """Reductions over valid positions; empty means are 0 (never NaN)."""
    per_pos = np.where(valid, per_pos, 0.0)
    N = per_pos.shape[0]
    seq_sum = per_pos.sum(axis=1)
    cnt = valid.sum(axis=1)
    seq_mean = np.where(cnt > 0, seq_sum / np.maximum(cnt, 1), 0.0)
    if reduction == "none":
        return per_pos
    if reduction == "sequence_sum":
        return seq_sum
    if reduction == "sequence_mean":
        return seq_mean
    if reduction == "sum":
        return per_pos.sum()
    if reduction == "mean":
        return per_pos.sum() / valid.sum() if valid.sum() > 0 else 0.0
    if reduction == "batchmean":
        return per_pos.sum() / N
    raise ValueError(reduction)


def loss(teacher, student, config, **kw):
    """The reduced loss under config["reduction"]."""
    c = _cfg(config)
    pp, valid = per_position(teacher, student, c, **kw)
    return reduce(pp, valid, c["reduction"])


def sequence_level(teacher_probs, student_probs, renormalize=False):
    """(cross entropy, KL on the set, teacher coverage) over candidate sequences."""
    pt, ps = np.asarray(teacher_probs, float), np.asarray(student_probs, float)
    cov = pt.sum()
    if renormalize:
        pt, ps = pt / pt.sum(), ps / ps.sum()
    with np.errstate(divide="ignore"):
        ce = -np.sum(np.where(pt > 0, pt * np.log(ps), 0.0))
        klv = np.sum(np.where(pt > 0, pt * (np.log(pt) - np.log(ps)), 0.0))
    return ce, klv, cov


if __name__ == "__main__":
    p = np.array([[[0.7, 0.2, 0.1]]])
    a = np.array([[[0.6, 0.3, 0.1]]])
    b = np.array([[[0.8, 0.1, 0.1]]])
    ka = loss(p, a, {"name": "forward_kl"}, teacher_kind="probs", student_kind="probs")
    kb = loss(p, b, {"name": "forward_kl"}, teacher_kind="probs", student_kind="probs")
    print(f"forward KL teacher(0.7,0.2,0.1) vs A: {ka:.5f} (expect 0.02681), vs B: {kb:.5f} (expect 0.04516)")
    assert abs(ka - 0.02681) < 5e-6 and abs(kb - 0.04516) < 5e-6
    ce1, kl1, _ = sequence_level([0.8, 0.15, 0.05], [0.6, 0.3, 0.1])
    ce2, kl2, _ = sequence_level([0.8, 0.15, 0.05], [0.6, 0.1, 0.3])
    print(f"sequence level: student1 CE {ce1:.7f} KL {kl1:.7f}; student2 CE {ce2:.7f} KL {kl2:.7f}")
    assert abs(ce1 - 0.7043857) < 1e-6 and abs(kl2 - 0.2013775) < 1e-6
    rng = np.random.default_rng(0)
    zt = rng.normal(size=(2, 3, 7)) * 2
    zs = zt + rng.normal(size=(2, 3, 7))
    for name in ["jsd", "generalized_jsd", "tvd"]:
        v = loss(zt, zs, {"name": name, "temperature": 2.0})
        assert 0 <= v <= (LN2 if "jsd" in name else 1)
    assert loss(zt, zt, {"name": "forward_kl"}) == 0
    print("reference self-checks passed")
