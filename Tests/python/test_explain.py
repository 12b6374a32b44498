"""distill/explain end to end: every number against an independent numpy computation, the
prose, the charts (parsed as XML and rendered to PNG) and the errors."""

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from distilld import RPCError
from schema import validate_result

TOL = 1e-6
LABELS = ["apple", "banana", "cherry"]
SEED = {"teacher": {"probs": [[0.7, 0.2, 0.1]]},
        "students": {"A": {"probs": [[0.6, 0.3, 0.1]]}, "B": {"probs": [[0.8, 0.1, 0.1]]}},
        "labels": LABELS, "temperatures": [0.5, 1, 2, 4, 8]}


# ---------------------------------------------------------------- reference maths

def softmax(z, tau=1.0):
    z = np.asarray(z, dtype=np.float64) / tau
    e = np.exp(z - z.max())
    return e / e.sum()


def kl(p, q):
    m = p > 0
    return float(np.sum(p[m] * (np.log(p[m]) - np.log(q[m]))))


def entropy(p):
    m = p > 0
    return float(-np.sum(p[m] * np.log(p[m])))


def reference_row(zt, zs, tau, temperatures):
    """Every quantity distill/explain reports for one row of logits (probabilities: pass log p)."""
    zt, zs = np.asarray(zt, np.float64), np.asarray(zs, np.float64)
    p, q = softmax(zt, tau), softmax(zs, tau)
    d = zt - zs
    at, as_ = int(np.argmax(zt)), int(np.argmax(zs))
    return {
        "p": p, "q": q,
        "terms": np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0),
        "kl": kl(p, q), "reverse": kl(q, p), "hp": entropy(p), "hq": entropy(q),
        "sweep_kl": np.array([kl(softmax(zt, t), softmax(zs, t)) for t in temperatures]),
        "sweep": np.array([t * t * kl(softmax(zt, t), softmax(zs, t)) for t in temperatures]),
        "limit": float(np.sum((d - d.mean()) ** 2) / (2 * len(d))),
        "argmax": (at, as_, float(zs[as_] - zs[at])),
        "gradient": tau * (q - p),
    }


def reference(teacher_rows, student_rows, tau=1.0, temperatures=(0.5, 1, 2, 4, 8)):
    """Means over rows, as the daemon aggregates (argmaxes from the first row)."""
    rows = [reference_row(zt, zs, tau, temperatures) for zt, zs in zip(teacher_rows, student_rows)]
    out = {k: np.mean([r[k] for r in rows], axis=0) for k in rows[0] if k != "argmax"}
    out["argmax"] = rows[0]["argmax"]
    return out


def logp(probs):
    """Probabilities are treated as logits log p; float32 as the daemon stores them."""
    return np.log(np.asarray(probs, dtype=np.float32).astype(np.float64))


def check_student(s, ref, labels=None, tau=1.0, temperatures=(0.5, 1, 2, 4, 8), top_k=3):
    V = len(ref["p"])
    # contributions: every output once, sorted by |term|, summing to the forward KL
    assert len(s["contributions"]) == min(V, 50)
    by_index = {c["index"]: c for c in s["contributions"]}
    for i in range(min(V, 50)):
        c = by_index[i]
        assert c["p"] == pytest.approx(ref["p"][i], abs=TOL)
        assert c["q"] == pytest.approx(ref["q"][i], abs=TOL)
        assert c["term"] == pytest.approx(ref["terms"][i], abs=TOL)
        if labels:
            assert c["label"] == labels[i]
    mags = [abs(c["term"]) for c in s["contributions"]]
    assert mags == sorted(mags, reverse=True)
    assert sum(c["term"] for c in s["contributions"]) == pytest.approx(ref["kl"], abs=TOL)
    top = sorted(ref["terms"], key=abs, reverse=True)[:top_k]
    assert s["topShare"]["k"] == min(top_k, V)
    assert s["topShare"]["share"] == pytest.approx(sum(top) / ref["kl"], abs=1e-5)
    # entropies and cross-entropy = H(p) + KL
    assert s["entropy"]["teacher"] == pytest.approx(ref["hp"], abs=TOL)
    assert s["entropy"]["student"] == pytest.approx(ref["hq"], abs=TOL)
    assert s["entropy"]["crossEntropy"] == pytest.approx(ref["hp"] + ref["kl"], abs=TOL)
    # direction
    assert s["direction"]["forwardKl"] == pytest.approx(ref["kl"], abs=TOL)
    assert s["direction"]["reverseKl"] == pytest.approx(ref["reverse"], abs=TOL)
    f, r = ref["kl"], ref["reverse"]
    want = "both" if abs(f - r) <= 0.1 * max(f, r) else ("forward" if f > r else "reverse")
    assert s["direction"]["sensitiveTo"] == want
    # temperature sweep τ²·KL, the large-τ limit and the small-τ argmax cost
    sweep = s["temperature"]["sweep"]
    assert [pt["temperature"] for pt in sweep] == list(temperatures)
    for j, pt in enumerate(sweep):
        assert pt["kl"] == pytest.approx(ref["sweep_kl"][j], abs=TOL)
        assert pt["scaledKl"] == pytest.approx(ref["sweep"][j], abs=TOL)
        assert pt["scaledKl"] == pytest.approx(pt["temperature"] ** 2 * pt["kl"], rel=1e-9, abs=1e-12)
    assert s["temperature"]["largeTemperatureLimit"] == pytest.approx(ref["limit"], abs=TOL)
    at, as_, cost = ref["argmax"]
    st = s["temperature"]["smallTemperature"]
    assert st["agree"] == (at == as_)
    assert st["argmaxDisagreementCost"] == pytest.approx(cost, abs=TOL)
    if labels:
        assert st["teacherArgmax"] == labels[at] and st["studentArgmax"] == labels[as_]
    # gradient τ(q^τ − p^τ)
    g = s["gradient"]
    assert g["temperature"] == tau
    assert [v["index"] for v in g["values"]] == list(range(V))
    for v in g["values"]:
        assert v["value"] == pytest.approx(ref["gradient"][v["index"]], abs=TOL)
    assert sum(v["value"] for v in g["values"]) == pytest.approx(0, abs=TOL)


# ---------------------------------------------------------------- the seed case

def test_seed_case_says_A_is_closer_and_every_number_matches_numpy(checked):
    r = checked.call("distill/explain", SEED)
    assert r["rows"] == 1 and r["example"] == "0" and r["position"] == 0 and r["temperature"] == 1
    assert r["closer"] == "A"
    assert "A is closer to the teacher than B" in r["comparison"]
    assert "0.0268" in r["comparison"] and "0.0452" in r["comparison"]
    names = [s["name"] for s in r["students"]]
    assert names == ["A", "B"]
    zt = logp([0.7, 0.2, 0.1])
    for s, probs in zip(r["students"], ([0.6, 0.3, 0.1], [0.8, 0.1, 0.1])):
        check_student(s, reference([zt], [logp(probs)]), labels=LABELS)
    A, B = r["students"]
    # textbook values, independently of the reference helper
    assert A["direction"]["forwardKl"] == pytest.approx(0.7 * np.log(7 / 6) + 0.2 * np.log(2 / 3), abs=TOL)
    assert B["direction"]["forwardKl"] == pytest.approx(0.7 * np.log(7 / 8) + 0.2 * np.log(2), abs=TOL)
    assert f"{A['direction']['forwardKl']:.4f}" == "0.0268" and f"{B['direction']['forwardKl']:.4f}" == "0.0452"
    # A's biggest term is apple (under-predicted), B's is banana
    assert A["contributions"][0]["label"] == "apple" and B["contributions"][0]["label"] == "banana"
    assert A["gradient"]["pushedUp"] == ["apple"] and A["gradient"]["pushedDown"] == ["banana"]
    assert B["gradient"]["pushedUp"] == ["banana"] and B["gradient"]["pushedDown"] == ["apple"]
    assert A["direction"]["sensitiveTo"] == "both" and B["direction"]["sensitiveTo"] == "forward"
    assert "Reverse KL agrees" in r["comparison"]
    # the large-τ limit is approached from the sweep: at τ = 8 within 3 %
    for s in r["students"]:
        lim = s["temperature"]["largeTemperatureLimit"]
        assert s["temperature"]["sweep"][-1]["scaledKl"] == pytest.approx(lim, rel=0.03)
        assert "(1/2V)" in s["temperature"]["text"]


def test_argmax_disagreement_cost_is_the_small_tau_limit_of_tau_kl(checked):
    zt = [2.0, 1.0, 0.0, -1.0]
    zs = [0.5, 1.7, 0.2, -0.4]
    r = checked.call("distill/explain", {"teacher": {"logits": [zt]}, "students": {"s": {"logits": [zs]}},
                                         "temperatures": [0.1, 0.2, 0.4, 0.8]})
    s = r["students"][0]
    st = s["temperature"]["smallTemperature"]
    assert st["agree"] is False and st["teacherArgmax"] == "#0" and st["studentArgmax"] == "#1"
    cost = zs[1] - zs[0]
    assert st["argmaxDisagreementCost"] == pytest.approx(cost, abs=TOL)
    check_student(s, reference([np.float32(zt)], [np.float32(zs)], temperatures=(0.1, 0.2, 0.4, 0.8)),
                  temperatures=(0.1, 0.2, 0.4, 0.8))
    # τ·KL → cost as τ → 0, with the error shrinking
    errs = [abs(pt["kl"] * pt["temperature"] - cost) for pt in s["temperature"]["sweep"]]
    assert errs[0] < errs[1] < errs[2] < errs[3] and errs[0] < 1e-3
    assert "disagreement costs" in s["temperature"]["text"]


def test_sequence_level_seed_case_through_score():
    """Teacher A 0.8, B 0.15, C 0.05 vs Student 1 (0.6, 0.3, 0.1) and Student 2 (0.6, 0.1, 0.3)."""
    from distilld import Client
    from conftest import daemon_path

    t = [0.8, 0.15, 0.05]
    s1, s2 = [0.6, 0.3, 0.1], [0.6, 0.1, 0.3]
    # hand computation
    want_kl = {"Student 1": 0.8 * np.log(0.8 / 0.6) + 0.15 * np.log(0.15 / 0.3) + 0.05 * np.log(0.05 / 0.1),
               "Student 2": 0.8 * np.log(0.8 / 0.6) + 0.15 * np.log(0.15 / 0.1) + 0.05 * np.log(0.05 / 0.3)}
    want_ce = {"Student 1": -(0.8 * np.log(0.6) + 0.15 * np.log(0.3) + 0.05 * np.log(0.1)),
               "Student 2": -(0.8 * np.log(0.6) + 0.15 * np.log(0.1) + 0.05 * np.log(0.3))}
    assert want_kl["Student 1"] == pytest.approx(0.0916, abs=1e-4)
    assert want_kl["Student 2"] == pytest.approx(0.2014, abs=1e-4)
    assert want_ce["Student 1"] == pytest.approx(0.7044, abs=1e-4)
    assert want_ce["Student 2"] == pytest.approx(0.8142, abs=1e-4)
    H = -(0.8 * np.log(0.8) + 0.15 * np.log(0.15) + 0.05 * np.log(0.05))
    with Client.start(daemon_path(), stderr=subprocess.DEVNULL) as c:
        for loss, want in (("forward_kl", want_kl), ("cross_entropy", want_ce)):
            r = c.call("distill/score", {"teacher": {"probs": [t]},
                                         "students": {"Student 1": {"probs": [s1]}, "Student 2": {"probs": [s2]}},
                                         "loss": {"name": loss}})
            got = {s["name"]: s["loss"] for s in r["students"]}
            for name in want:
                assert got[name] == pytest.approx(want[name], abs=TOL)
            assert r["best"] == "Student 1" and r["ranking"] == ["Student 1", "Student 2"]
            # CE - KL is the teacher's entropy, the same for both students
            for s in r["students"]:
                assert s["entropy"]["teacher"] == pytest.approx(H, abs=TOL)
        # explain agrees with score and with the same ranking
        r = c.call("distill/explain", {"teacher": {"probs": [t]},
                                       "students": {"Student 1": {"probs": [s1]}, "Student 2": {"probs": [s2]}},
                                       "labels": ["A", "B", "C"]})
        assert r["closer"] == "Student 1"
        for s in r["students"]:
            assert s["direction"]["forwardKl"] == pytest.approx(want_kl[s["name"]], abs=TOL)
            assert s["entropy"]["crossEntropy"] == pytest.approx(want_ce[s["name"]], abs=TOL)


# ---------------------------------------------------------------- aggregation and selection

def _dataset(n=5, t=2, v=6, seed=7):
    rng = np.random.default_rng(seed)
    zt = rng.normal(size=(n, t, v)).astype(np.float32)
    zs = (zt + rng.normal(scale=0.7, size=(n, t, v))).astype(np.float32)
    return zt, zs


def test_aggregation_over_a_dataset_is_the_mean_of_per_row_quantities(checked):
    zt, zs = _dataset()
    temps = [0.5, 1, 3]
    r = checked.call("distill/explain", {"teacher": {"logits": zt.tolist()}, "students": {"s": {"logits": zs.tolist()}},
                                         "temperatures": temps, "temperature": 2, "topK": 2})
    n, t, v = zt.shape
    assert r["rows"] == n * t and "example" not in r and "position" not in r and "closer" not in r
    ref = reference(zt.reshape(-1, v), zs.reshape(-1, v), tau=2, temperatures=temps)
    check_student(r["students"][0], ref, tau=2, temperatures=temps, top_k=2)


def test_aggregation_skips_masked_positions(checked):
    zt, zs = _dataset(n=3, t=3, v=4, seed=3)
    mask = [[1, 1, 0], [1, 0, 0], [1, 1, 1]]
    r = checked.call("distill/explain", {"teacher": {"logits": zt.tolist(), "mask": mask},
                                         "students": {"s": {"logits": zs.tolist()}}, "temperatures": [1, 2]})
    keep = np.asarray(mask, bool)
    assert r["rows"] == int(keep.sum())
    ref = reference(zt[keep], zs[keep], temperatures=(1, 2))
    check_student(r["students"][0], ref, temperatures=(1, 2))


def test_example_by_id_and_by_index(checked):
    # the builtin demo teacher has ids ex1..ex6 and labels
    base = {"teacher": {"path": "builtin:demo"}, "students": {"A": {"path": "builtin:demo-student-A"}}}
    by_id = checked.call("distill/explain", dict(base, example="ex3"))
    by_index = checked.call("distill/explain", dict(base, example=2))
    assert by_id["example"] == by_index["example"] == "ex3"
    assert by_id["rows"] == by_index["rows"] == 1 and by_id["position"] == 0
    assert by_id["students"][0]["direction"] == by_index["students"][0]["direction"]
    ref = reference([logp([0.2, 0.2, 0.6])], [logp([0.25, 0.25, 0.5])])
    check_student(by_id["students"][0], ref, labels=LABELS)  # labels come from the builtin teacher
    # inline data has no ids: an integer is an index, returned as a string
    zt, zs = _dataset(n=3, t=2, v=4)
    r = checked.call("distill/explain", {"teacher": {"logits": zt.tolist()}, "students": {"s": {"logits": zs.tolist()}},
                                         "example": 1, "position": 1})
    assert r["example"] == "1" and r["position"] == 1 and r["rows"] == 1
    check_student(r["students"][0], reference([zt[1, 1]], [zs[1, 1]]))
    # an example without position: its valid positions averaged
    r = checked.call("distill/explain", {"teacher": {"logits": zt.tolist()}, "students": {"s": {"logits": zs.tolist()}},
                                         "example": 2})
    assert r["rows"] == 2
    check_student(r["students"][0], reference(zt[2], zs[2]))


def test_logits_with_temperature_and_the_large_tau_limit(checked):
    rng = np.random.default_rng(11)
    zt = rng.normal(scale=2, size=8).astype(np.float32)
    zs = (zt + rng.normal(size=8)).astype(np.float32)
    temps = [1, 2, 4, 8, 16, 32, 64]
    r = checked.call("distill/explain", {"teacher": {"logits": [zt.tolist()]}, "students": {"s": {"logits": [zs.tolist()]}},
                                         "temperatures": temps, "temperature": 4})
    s = r["students"][0]
    ref = reference([zt], [zs], tau=4, temperatures=temps)
    check_student(s, ref, tau=4, temperatures=temps)
    d = zt.astype(np.float64) - zs.astype(np.float64)
    limit = np.sum((d - d.mean()) ** 2) / (2 * len(d))
    assert s["temperature"]["largeTemperatureLimit"] == pytest.approx(limit, abs=TOL)
    errs = [abs(pt["scaledKl"] - limit) / limit for pt in s["temperature"]["sweep"]]
    # the relative error shrinks with τ (from τ = 4 on, where the expansion applies) like 1/τ:
    # each doubling of τ roughly halves it, and at τ = 64 τ²·KL is within a few percent of the limit
    assert all(a > b for a, b in zip(errs[2:], errs[3:])), errs
    assert all(b < 0.7 * a for a, b in zip(errs[3:], errs[4:])), errs
    assert errs[-1] < 0.05
    # logits shifted by a constant explain the same
    r2 = checked.call("distill/explain", {"teacher": {"logits": [(zt + 5).tolist()]}, "students": {"s": {"logits": [zs.tolist()]}},
                                          "temperatures": temps, "temperature": 4, "charts": False})
    assert "charts" not in r2
    assert r2["students"][0]["temperature"]["largeTemperatureLimit"] == pytest.approx(limit, abs=1e-5)


def test_zero_probability_has_no_large_tau_limit(checked):
    r = checked.call("distill/explain", {"teacher": {"probs": [[0.5, 0.5, 0.0]]},
                                         "students": {"s": {"probs": [[0.4, 0.4, 0.2]]}}})
    s = r["students"][0]
    assert s["temperature"]["largeTemperatureLimit"] is None
    assert "does not exist" in s["temperature"]["text"]
    assert s["direction"]["forwardKl"] == pytest.approx(np.log(1.25), abs=TOL)


def test_default_sweep_and_empty_sweep(checked):
    r = checked.call("distill/explain", {"teacher": {"probs": [[0.7, 0.2, 0.1]]}, "students": {"s": {"probs": [[0.6, 0.3, 0.1]]}}})
    assert [p["temperature"] for p in r["students"][0]["temperature"]["sweep"]] == [0.5, 1, 2, 4, 8]
    assert "temperature" in r["charts"]
    r = checked.call("distill/explain", {"teacher": {"probs": [[0.7, 0.2, 0.1]]}, "students": {"s": {"probs": [[0.6, 0.3, 0.1]]}},
                                         "temperatures": []})
    assert r["students"][0]["temperature"]["sweep"] == []
    assert "temperature" not in r["charts"]


# ---------------------------------------------------------------- charts

def _parse_svg(svg):
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return "".join(root.itertext())


def test_charts_are_svg_with_the_labels_and_render_to_png(checked, tmp_path):
    r = checked.call("distill/explain", SEED)
    charts = r["charts"]
    assert set(charts["contributions"]) == {"A", "B"}
    for name, svg in charts["contributions"].items():
        text = _parse_svg(svg)
        for label in LABELS:
            assert label in text
        assert name in text
    text = _parse_svg(charts["temperature"])
    assert "A" in text and "B" in text and "τ" in text
    rsvg = shutil.which("rsvg-convert")
    if rsvg is None:
        pytest.skip("rsvg-convert not installed (Debian librsvg2-bin)")
    for i, svg in enumerate([charts["contributions"]["A"], charts["temperature"]]):
        src, png = tmp_path / f"c{i}.svg", tmp_path / f"c{i}.png"
        src.write_text(svg, encoding="utf-8")
        subprocess.run([rsvg, "-o", str(png), str(src)], check=True, timeout=30)
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(data) > 2000


def test_charts_dir_writes_files(checked, tmp_path):
    out = tmp_path / "charts"
    out.mkdir()
    r = checked.call("distill/explain", dict(SEED, students={"A": SEED["students"]["A"], "B/2": SEED["students"]["B"]},
                                             chartsDir=str(out)))
    files = sorted(r["chartFiles"])
    assert files == sorted(str(out / n) for n in ["contributions-A.svg", "contributions-B_2.svg", "temperature.svg"])
    for f in files:
        content = open(f, encoding="utf-8").read()
        _parse_svg(content)
    assert open(out / "contributions-A.svg", encoding="utf-8").read() == r["charts"]["contributions"]["A"]


def test_charts_dir_that_cannot_be_written(client, tmp_path):
    with pytest.raises(RPCError) as e:
        client.call("distill/explain", dict(SEED, chartsDir=str(tmp_path / "missing" / "dir")))
    assert e.value.code == -32602 and e.value.data["field"] == "params.chartsDir"


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("change, field", [
    ({"teacher": {"topk": {"indices": [[0, 1]], "values": [[0.7, 0.2]], "vocab": 3}}}, "params.teacher"),
    ({"students": {"A": {"topk": {"indices": [[0, 1]], "values": [[0.6, 0.3]], "vocab": 3}}}}, "params.students.A"),
    ({"labels": ["apple", "banana"]}, "params.labels"),
    ({"example": "nope"}, "params.example"),
    ({"example": 3}, "params.example"),
    ({"temperatures": [1, 0]}, "params.temperatures[1]"),
    ({"temperatures": [-2]}, "params.temperatures[0]"),
    ({"temperature": 0}, "params.temperature"),
    ({"temperature": -1.5}, "params.temperature"),
    ({"students": {}}, "params.students"),
    ({"position": 0}, "params.position"),
    ({"bogus": 1}, "params.bogus"),
])
def test_invalid_params_name_the_field(client, change, field):
    with pytest.raises(RPCError) as e:
        client.call("distill/explain", dict(SEED, **change))
    assert e.value.code == -32602, e.value.message
    assert e.value.data["field"] == field
    assert field in e.value.message


def test_missing_teacher_and_shape_mismatch(client):
    with pytest.raises(RPCError) as e:
        client.call("distill/explain", {"students": SEED["students"]})
    assert e.value.code == -32602 and e.value.data["field"] == "params.teacher"
    with pytest.raises(RPCError) as e:
        client.call("distill/explain", dict(SEED, students={"A": {"probs": [[0.5, 0.5]]}}))
    assert e.value.code == 1003 and e.value.data["field"] == "params.students.A"
    with pytest.raises(RPCError) as e:
        client.call("distill/explain", dict(SEED, teacher="no-such-teacher"))
    assert e.value.code == 1001


def test_result_schema_is_tight(checked):
    """The schema rejects a reply that lost a required member (guards the schema itself)."""
    import jsonschema
    r = checked.call("distill/explain", SEED)
    broken = dict(r)
    del broken["students"]
    with pytest.raises(jsonschema.ValidationError):
        validate_result("distill/explain", broken)
