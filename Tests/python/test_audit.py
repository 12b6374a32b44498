"""distill/audit (issue #13): the cost of keeping only a dense teacher's top k, against numpy in
float64 — the dense forward KL, the two tail policies of the loss engine (renormalise over the top
k; a tail bucket holding the rest), plain truncation (Σ over the top k of p log p/q, which goes
negative), the tail masses and the smallest k within the bound. Every result is validated against
its schema."""
import numpy as np
import pytest

from distilld import RPCError


def log_softmax(x, tau=1.0):
    z = x / tau
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def kl(p, q):
    """Σ p (log p − log q) over the last axis, 0·log 0 = 0; p and q are probabilities."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
    return terms.sum(axis=-1)


def reference(teacher, student, mask, ks, tau, bound):
    logp1, logq1 = log_softmax(teacher), log_softmax(student)
    logpt, logqt = log_softmax(teacher, tau), log_softmax(student, tau)
    valid = mask.astype(bool)
    exact = kl(np.exp(logpt), np.exp(logqt))[valid].mean()
    order = np.argsort(-logp1, axis=-1, kind="stable")
    levels = []
    for k in ks:
        top = order[..., :k]
        p1, q1 = np.take_along_axis(np.exp(logp1), top, -1), np.take_along_axis(np.exp(logq1), top, -1)
        pt, qt = np.take_along_axis(np.exp(logpt), top, -1), np.take_along_axis(np.exp(logqt), top, -1)
        renorm = kl(pt / pt.sum(-1, keepdims=True), qt / qt.sum(-1, keepdims=True))
        bucket = kl(np.concatenate([pt, 1 - pt.sum(-1, keepdims=True)], -1),
                    np.concatenate([qt, 1 - qt.sum(-1, keepdims=True)], -1))
        if k == teacher.shape[-1]:  # nothing left out: no bucket (its rounding error is not a tail)
            bucket = kl(pt, qt)
        trunc = (pt * (np.log(pt) - np.log(qt))).sum(-1)
        levels.append({
            "k": k, "tail": (1 - p1.sum(-1))[valid], "outside": (1 - q1.sum(-1))[valid],
            "renormalize": renorm[valid], "tail_bucket": bucket[valid], "truncate": trunc[valid]})
    return exact, levels


@pytest.mark.parametrize("seed,tau", [(1, 1.0), (2, 1.0), (3, 2.0)])
def test_audit_matches_numpy(checked, seed, tau):
    rng = np.random.default_rng(seed)
    n, t, v = 3, 4, 40
    teacher = rng.normal(size=(n, t, v)) * 2.5
    student = teacher + rng.normal(size=(n, t, v)) * 0.8
    mask = np.ones((n, t), dtype=np.int64)
    mask[1, 3] = mask[2, 0] = 0
    ks = [1, 3, 10, 40]
    bound = 0.02
    r = checked.call("distill/audit", {
        "teacher": {"logits": teacher.astype(np.float32).tolist(), "mask": mask.tolist()},
        "student": {"logits": student.astype(np.float32).tolist()},
        "ks": [10, 3, 40, 1, 3], "temperature": tau, "bound": bound})
    exact, levels = reference(teacher.astype(np.float32).astype(np.float64), student.astype(np.float32).astype(np.float64),
                              mask, ks, tau, bound)
    assert r["positions"] == int(mask.sum()) and r["temperature"] == tau and r["bound"] == bound
    assert r["exact"] == pytest.approx(exact, abs=1e-5)
    assert [l["k"] for l in r["levels"]] == ks
    smallest = {}
    for got, want in zip(r["levels"], levels):
        assert got["tailMass"]["mean"] == pytest.approx(want["tail"].mean(), abs=1e-6)
        assert got["tailMass"]["max"] == pytest.approx(want["tail"].max(), abs=1e-6)
        assert got["studentMassOutside"]["mean"] == pytest.approx(want["outside"].mean(), abs=1e-6)
        for policy in ["renormalize", "truncate"] + (["tail_bucket"] if tau == 1.0 else []):
            p = got["policies"][policy]
            assert p["kl"] == pytest.approx(want[policy].mean(), abs=1e-5), (got["k"], policy)
            assert p["error"] == pytest.approx(want[policy].mean() - exact, abs=1e-5), (got["k"], policy)
            assert p["negativePositions"] == int((want[policy] < -1e-9).sum()), (got["k"], policy)
        for policy in ["renormalize", "tail_bucket", "truncate"]:
            if abs(got["policies"][policy]["error"]) <= bound:
                smallest.setdefault(policy, got["k"])
    assert r["smallestK"] == {p: smallest.get(p) for p in ["renormalize", "tail_bucket", "truncate"]}
    # k = V keeps everything: every policy is the dense KL.
    full = r["levels"][-1]
    assert full["tailMass"]["max"] == pytest.approx(0, abs=1e-6)
    for policy in full["policies"].values():
        assert policy["error"] == pytest.approx(0, abs=1e-5)
    # Plain truncation is not a divergence: at k = 1 a close student makes it negative somewhere.
    assert r["levels"][0]["policies"]["truncate"]["negativePositions"] > 0


def test_audit_refuses_what_it_cannot_audit(client):
    dense = {"probs": [[0.5, 0.3, 0.2]]}
    topk = {"topk": {"indices": [[[0, 1]]], "values": [[[-0.7, -1.2]]], "vocab": 3}}
    with pytest.raises(RPCError) as e:
        client.call("distill/audit", {"teacher": topk, "student": dense})
    assert e.value.code == -32602 and e.value.data["field"] == "params.teacher" and "top-k" in e.value.message
    with pytest.raises(RPCError) as e:
        client.call("distill/audit", {"teacher": dense, "student": {"probs": [[0.5, 0.5]]}})
    assert e.value.code == 1003
    with pytest.raises(RPCError) as e:
        client.call("distill/audit", {"teacher": dense, "student": dense, "ks": []})
    assert e.value.code == -32602 and e.value.data["field"] == "params.ks"
    with pytest.raises(RPCError) as e:
        client.call("distill/audit", {"teacher": dense, "student": dense, "bound": 0})
    assert e.value.code == -32602 and e.value.data["field"] == "params.bound"
