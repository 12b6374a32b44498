"""distill/diagnose end to end: which dataset the student saw (exact counts on generated data),
the pair-integrity findings per code, the context gap against numpy, and the LSP diagnostics."""

import json
import random

import numpy as np
import pytest

from distilld import RPCError

TOL = 1e-6
WORDS = ("river stone lantern orchard meadow copper violet harbor thunder maple falcon velvet "
         "canyon ember glacier hollow island jasmine kettle lemon marble nectar oyster pepper quartz "
         "saddle timber umbrella valley willow yonder zephyr anchor basket candle dragon feather garden "
         "hammer indigo jacket kernel ladder mirror needle olive parrot quiver ribbon silver tulip").split()


def make_pairs(n, seed=1, full_words=30, simp_words=8):
    """n distinct pairs: a long full context and a short simplified input (its last words, reworded)."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        full = " ".join(rng.choice(WORDS) for _ in range(full_words)) + f" number{i}"
        simp = "In short: " + " ".join(full.split()[-simp_words:])
        pairs.append({"id": f"p{i}", "full": full, "simplified": simp, "target": WORDS[i % len(WORDS)]})
    return pairs


def load_inline(c, name, pairs):
    return c.call("dataset/load", {"name": name, "examples": pairs})


def load_file(c, name, pairs, path, blank_every=0):
    """Writes JSON Lines (optionally with blank lines, so lines differ from indices) and loads it."""
    lines = []
    line_of = {}
    for i, p in enumerate(pairs):
        if blank_every and i and i % blank_every == 0:
            lines.append("")
        lines.append(json.dumps(p))
        line_of[p.get("id", i)] = len(lines)
    path.write_text("\n".join(lines) + "\n")
    c.call("dataset/load", {"name": name, "path": str(path)})
    return line_of


def inputs_with_rate(pairs, n_full, seed=0):
    """The first n_full inputs are full contexts, the rest simplified, shuffled."""
    items = [(p["full"], "full", p["id"]) for p in pairs[:n_full]] + [(p["simplified"], "simplified", p["id"]) for p in pairs[n_full:]]
    random.Random(seed).shuffle(items)
    return items


def codes(result):
    return [d["code"] for d in result["diagnostics"]]


# ---------------------------------------------------------------- classification

@pytest.mark.parametrize("source", ["inline", "file"])
@pytest.mark.parametrize("n_full, regime, code, severity", [
    (0, "all-simplified", None, None),
    (10, "mixed", "mixed-contexts", 2),
    (20, "mostly-full", "trained-on-full-context", 1),
])
def test_mismatch_rates(checked, tmp_path, source, n_full, regime, code, severity):
    pairs = make_pairs(20)
    if source == "inline":
        load_inline(checked, "d", pairs)
    else:
        load_file(checked, "d", pairs, tmp_path / "pairs.jsonl")
    items = inputs_with_rate(pairs, n_full)
    r = checked.call("distill/diagnose", {"dataset": "d", "inputs": [t for t, _, _ in items]})
    c = r["classification"]
    assert (c["total"], c["full"], c["simplified"], c["ambiguous"], c["unknown"]) == (20, n_full, 20 - n_full, 0, 0)
    assert (c["exact"], c["near"]) == (20, 0)
    assert c["rates"]["full"] == pytest.approx(n_full / 20)
    assert c["rates"]["simplified"] == pytest.approx(1 - n_full / 20)
    assert c["rates"]["fullShareOfMatched"] == pytest.approx(n_full / 20)
    assert c["regime"] == regime and c["nearThreshold"] == 0.8
    for entry, (text, kind, pid) in zip(c["inputs"], items):
        assert entry["kind"] == kind and entry["exampleId"] == pid and entry["method"] == "exact"
        assert entry["similarity"] == 1
    assert [e["index"] for e in c["inputs"]] == list(range(20))
    assert [e["line"] for e in c["inputs"]] == list(range(1, 21))
    if code is None:
        assert c["verdict"] == "All 20 training inputs are simplified inputs: the student is trained on D', as intended."
        assert not [d for d in r["diagnostics"] if d["code"] in ("trained-on-full-context", "mixed-contexts", "some-full-contexts")]
    else:
        d = next(d for d in r["diagnostics"] if d["code"] == code)
        assert d["severity"] == severity
        assert d["data"]["full"] == n_full and d["data"]["simplified"] == 20 - n_full and d["data"]["total"] == 20
        assert sorted(d["data"]["exampleIds"]) == sorted(p["id"] for p in pairs[:n_full])
        assert d["message"] == c["verdict"] + " " + c["consequence"]
    if n_full == 20:
        assert c["verdict"] == "All 20 training inputs are full contexts: the student is being trained on D, not D'."
    if n_full == 10:
        assert c["verdict"].startswith("10 of 20 training inputs are full contexts and 10 are simplified inputs")
    assert r["summary"].startswith(c["verdict"])


def test_a_few_full_contexts_and_the_other_regimes(checked):
    pairs = make_pairs(20, seed=2)
    load_inline(checked, "d", pairs)
    # 1 of 20: mostly simplified, a warning that some full contexts leaked
    items = inputs_with_rate(pairs, 1)
    r = checked.call("distill/diagnose", {"dataset": "d", "inputs": [t for t, _, _ in items]})
    assert r["classification"]["regime"] == "mostly-simplified"
    d = next(d for d in r["diagnostics"] if d["code"] == "some-full-contexts")
    assert d["severity"] == 2 and d["data"]["exampleIds"] == ["p0"]
    # more than half unknown
    r = checked.call("distill/diagnose", {"dataset": "d", "inputs": ["nothing like it"] * 11 + [p["full"] for p in pairs[:9]]})
    c = r["classification"]
    assert c["regime"] == "mostly-unknown" and (c["unknown"], c["full"]) == (11, 9)
    assert next(d for d in r["diagnostics"] if d["code"] == "unknown-inputs")["severity"] == 2
    # 18 of 20 full = 90 %: mostly full (the boundary is inclusive)
    items = inputs_with_rate(pairs, 18)
    r = checked.call("distill/diagnose", {"dataset": "d", "inputs": [t for t, _, _ in items]})
    assert r["classification"]["regime"] == "mostly-full" and "trained-on-full-context" in codes(r)
    # no inputs at all
    r = checked.call("distill/diagnose", {"dataset": "d", "inputs": []})
    assert r["classification"]["regime"] == "no-inputs" and r["classification"]["total"] == 0
    # without `inputs` there is no classification
    r = checked.call("distill/diagnose", {"dataset": "d"})
    assert "classification" not in r and r["diagnostics"] == []
    assert r["summary"] == "All 20 pairs pass the integrity checks."


def test_inconclusive_when_every_match_is_ambiguous(checked):
    load_inline(checked, "d", [{"id": "a", "full": "Same text on both sides here", "simplified": "same text on both sides here."},
                               {"id": "b", "full": "another pair whose texts are long enough", "simplified": "another pair"}])
    r = checked.call("distill/diagnose", {"dataset": "d", "inputs": ["Same text on both sides here"]})
    c = r["classification"]
    assert c["regime"] == "inconclusive" and c["ambiguous"] == 1
    assert "exampleId" not in c["inputs"][0] and c["inputs"][0]["kind"] == "ambiguous"
    d = next(d for d in r["diagnostics"] if d["code"] == "ambiguous-inputs")
    assert d["severity"] == 3


def test_edited_near_duplicates_and_normalisation(checked):
    pairs = make_pairs(10, seed=3, full_words=40)
    load_inline(checked, "d", pairs)
    rng = random.Random(5)

    def change_words(text, k):
        w = text.split()
        for i in rng.sample(range(len(w) - 1), k):
            w[i] = w[i] + "x"
        return " ".join(w)

    inputs = [
        change_words(pairs[0]["full"], 1),                              # near, full
        change_words(pairs[1]["full"], 2),                              # near, full
        pairs[2]["full"].upper(),                                       # exact (case)
        "  " + pairs[3]["full"].replace(" ", " \t\n ") + "  ",          # exact (whitespace)
        "«" + pairs[4]["full"] + "!!!»",                                # exact (edge punctuation)
        pairs[5]["full"].replace(" ", ", ", 3),                         # near (punctuation inside)
        pairs[6]["simplified"].lower() + " ...",                        # exact, simplified
        pairs[7]["simplified"],                                         # exact, simplified
        change_words(pairs[8]["full"], 30),                             # too different: unknown
        "",                                                             # empty: unknown
    ]
    r = checked.call("distill/diagnose", {"dataset": "d", "inputs": inputs})
    c = r["classification"]
    got = [(e["kind"], e.get("method"), e.get("exampleId")) for e in c["inputs"]]
    assert got == [("full", "near", "p0"), ("full", "near", "p1"), ("full", "exact", "p2"), ("full", "exact", "p3"),
                   ("full", "exact", "p4"), ("full", "near", "p5"), ("simplified", "exact", "p6"),
                   ("simplified", "exact", "p7"), ("unknown", None, None), ("unknown", None, None)]
    assert (c["full"], c["simplified"], c["unknown"], c["exact"], c["near"]) == (6, 2, 2, 5, 3)
    for e in c["inputs"]:
        if e.get("method") == "near":
            assert 0.8 <= e["similarity"] < 1
        elif e["kind"] == "unknown":
            assert e["similarity"] == 0
    assert c["regime"] == "mixed"  # 6 of 8 matched are full
    assert any("near-duplicates" in n for n in c["notes"])
    # a stricter threshold turns the edited ones into unknowns
    r = checked.call("distill/diagnose", {"dataset": "d", "inputs": inputs, "nearThreshold": 1})
    c = r["classification"]
    assert c["nearThreshold"] == 1 and c["near"] == 0 and c["unknown"] == 5 and c["full"] == 3


def test_inputs_from_a_loaded_list_and_from_a_file(checked, tmp_path):
    pairs = make_pairs(6, seed=4)
    load_inline(checked, "d", pairs)
    texts = [p["full"] for p in pairs[:3]] + [p["simplified"] for p in pairs[3:]]
    checked.call("dataset/load", {"name": "trained", "inputs": texts})
    a = checked.call("distill/diagnose", {"dataset": "d", "inputs": "trained"})
    f = tmp_path / "inputs.txt"
    f.write_text("\n".join(texts) + "\n")
    b = checked.call("distill/diagnose", {"dataset": "d", "inputs": {"path": str(f), "format": "txt"}})
    assert a["classification"] == b["classification"]
    assert (a["classification"]["full"], a["classification"]["simplified"]) == (3, 3)


# ---------------------------------------------------------------- the builtin demo

def test_builtin_demo_reads_trained_on_full_context(checked):
    """The demo's training inputs are (mostly) the full contexts of builtin:demo: the mistake diagnose catches."""
    checked.call("dataset/load", {"name": "demo", "path": "builtin:demo"})
    checked.call("dataset/load", {"name": "demo-inputs", "path": "builtin:demo-inputs"})
    pairs = checked.call("dataset/examples", {"name": "demo"})["examples"]
    texts = [i["text"] for i in checked.call("dataset/examples", {"name": "demo-inputs"})["inputs"]]
    fulls = {p["full"]: p["id"] for p in pairs}
    by_name = checked.call("distill/diagnose", {"dataset": "demo", "inputs": "demo-inputs"})
    by_path = checked.call("distill/diagnose", {"dataset": "demo", "inputs": {"path": "builtin:demo-inputs"}})
    assert by_name["classification"] == by_path["classification"]
    c = by_name["classification"]
    assert c["total"] == len(texts)
    assert c["regime"] == "mostly-full"
    assert c["full"] >= sum(t in fulls for t in texts) and c["simplified"] == 0
    for e, t in zip(c["inputs"], texts):
        if t in fulls:
            assert (e["kind"], e["method"], e["exampleId"]) == ("full", "exact", fulls[t])
    d = next(d for d in by_name["diagnostics"] if d["code"] == "trained-on-full-context")
    assert d["severity"] == 1 and d["data"]["full"] == c["full"]
    assert "the student is being trained on D, not D'" in by_name["summary"]
    # the demo pairs themselves: ex5 was never simplified
    assert [(f["code"], f["exampleIds"]) for f in by_name["integrity"]["findings"]] == [("identical-simplification", ["ex5"])]


# ---------------------------------------------------------------- integrity

LONG = ("the old lighthouse keeper climbed the spiral stairs every evening at dusk to light the great lamp "
        "that warned the fishing boats away from the rocks below the cliff")


@pytest.mark.parametrize("pair, code, severity", [
    ({"full": "The cat sat on the mat.", "simplified": "the CAT sat   on the mat"}, "identical-simplification", 2),
    ({"full": "", "simplified": "a cat"}, "empty-full", 1),
    ({"full": "a cat on a mat", "simplified": "  ...  "}, "empty-simplified", 1),
    ({"full": "the cat sat on the mat", "simplified": "a cat was sitting on a very soft and very warm mat by the door"},
     "simplified-longer", 3),
    ({"full": "the cat sat on the mat", "simplified": "quantum hadrons"},
     "unrelated-simplification", 2),
    ({"full": LONG, "simplified": LONG.rsplit(" ", 1)[0]}, "context-leak", 2),
    ({"id": "  ", "full": "the cat sat on the mat", "simplified": "the cat"}, "missing-id", 2),
])
def test_each_integrity_code(checked, pair, code, severity):
    good = [{"id": f"g{i}", **p} for i, p in enumerate(
        [{"full": "the dog ran across the wide green park", "simplified": "the dog ran"},
         {"full": "rain fell all night on the tin roof", "simplified": "rain fell"}])]
    bad = dict({"id": "bad"}, **pair)
    load_inline(checked, "d", [good[0], bad, good[1]])
    r = checked.call("distill/diagnose", {"dataset": "d"})
    findings = r["integrity"]["findings"]
    assert [f["code"] for f in findings] == [code]
    f = findings[0]
    assert f["severity"] == severity and f["count"] == 1 and f["exampleIds"] == [bad["id"]]
    d = r["diagnostics"]
    assert [x["code"] for x in d] == [code]
    assert d[0]["severity"] == severity and d[0]["range"]["start"] == {"line": 1, "character": 0}
    assert d[0]["data"]["lines"] == [2] and d[0]["data"]["count"] == 1
    assert r["summary"].startswith("1 pair of 3 ") and r["summary"].endswith(f"integrity problems ({code}).")
    stats = r["integrity"]["stats"]
    skipped = 1 if code.startswith("empty") else 0
    assert stats["pairs"] == 3 - skipped and stats["skipped"] == skipped


def test_findings_are_grouped_in_catalogue_order(checked):
    pairs = [
        {"id": "a", "full": "x y z w", "simplified": "X Y Z W"},
        {"id": "b", "full": "", "simplified": "a"},
        {"id": "c", "full": "one two", "simplified": "two one three four five six"},
        {"id": "d", "full": "q r s t", "simplified": "q r s t!"},
        {"id": "e", "full": "the cat sat on the mat", "simplified": "quantum chromodynamics"},
    ]
    load_inline(checked, "d", pairs)
    r = checked.call("distill/diagnose", {"dataset": "d"})
    got = {f["code"]: f["exampleIds"] for f in r["integrity"]["findings"]}
    assert list(got) == ["empty-full", "identical-simplification", "simplified-longer", "unrelated-simplification"]
    assert got["identical-simplification"] == ["a", "d"]
    d = next(x for x in r["diagnostics"] if x["code"] == "identical-simplification")
    assert d["data"]["lines"] == [1, 4] and d["data"]["count"] == 2
    assert "relatedInformation" not in d  # inline data has no file to point into


def test_duplicate_ids_are_refused_at_load(checked, tmp_path):
    with pytest.raises(RPCError) as e:
        checked.call("dataset/load", {"name": "d", "examples": [{"id": "x", "full": "a b", "simplified": "a"},
                                                                 {"id": "x", "full": "c d", "simplified": "c"}]})
    assert e.value.code == 1004 and e.value.data["reason"] == "duplicateId" and e.value.data["line"] == 2
    f = tmp_path / "dup.jsonl"
    f.write_text('{"id":"x","full":"a b","simplified":"a"}\n\n{"id":"x","full":"c d","simplified":"c"}\n')
    with pytest.raises(RPCError) as e:
        checked.call("dataset/load", {"name": "d", "path": str(f)})
    assert e.value.code == 1004 and e.value.data["line"] == 3
    assert "already appeared on line 1" in e.value.message


def test_missing_ids_in_a_file_without_ids(checked, tmp_path):
    pairs = [{"full": "the dog ran across the park", "simplified": "the dog ran"},
             {"full": "rain fell all night long", "simplified": "rain fell"}]
    f = tmp_path / "noids.jsonl"
    f.write_text("\n".join(json.dumps(p) for p in pairs) + "\n")
    info = checked.call("dataset/load", {"name": "d", "path": str(f)})
    assert info["idsSynthesized"] is True
    r = checked.call("distill/diagnose", {"dataset": "d"})
    assert [(x["code"], x["count"]) for x in r["integrity"]["findings"]] == [("missing-id", 2)]
    d = r["diagnostics"][0]
    assert d["data"]["lines"] == [1, 2]
    assert d["relatedInformation"][0]["location"]["uri"] == f.as_uri()
    assert d["relatedInformation"][0]["location"]["range"]["start"]["line"] == 1


@pytest.mark.parametrize("source", ["file", "inline"])
def test_missing_id_next_to_examples_with_ids(checked, tmp_path, source):
    pairs = [{"id": "a", "full": "the dog ran across the park", "simplified": "the dog ran"},
             {"full": "rain fell all night long", "simplified": "rain fell"}]
    if source == "file":
        load_file(checked, "d", pairs, tmp_path / "some.jsonl")
    else:
        load_inline(checked, "d", pairs[1:])
    r = checked.call("distill/diagnose", {"dataset": "d"})
    assert [x["code"] for x in r["integrity"]["findings"]] == ["missing-id"]


# ---------------------------------------------------------------- diagnostics on the lines of a file

def test_diagnostics_have_lsp_shape_and_file_lines(checked, tmp_path):
    pairs = make_pairs(12, seed=6)
    pairs[4]["simplified"] = pairs[4]["full"].upper()           # identical
    pairs[9]["simplified"] = pairs[9]["full"] + " and more"     # longer (and a leak)
    pairs[10]["simplified"] = pairs[10]["full"] + " again"
    path = tmp_path / "pairs.jsonl"
    line_of = load_file(checked, "d", pairs, path, blank_every=3)
    items = inputs_with_rate(pairs, 12)
    r = checked.call("distill/diagnose", {"dataset": "d", "inputs": [p["full"] for p in pairs]})
    by_code = {d["code"]: d for d in r["diagnostics"]}
    assert set(by_code) >= {"identical-simplification", "simplified-longer", "context-leak"}
    for d in r["diagnostics"]:
        assert set(d) <= {"range", "severity", "code", "source", "message", "data", "relatedInformation"}
        assert d["source"] == "distilld" and d["severity"] in (1, 2, 3, 4)
        assert d["range"]["start"]["character"] == 0 and d["range"]["end"]["character"] == 0
        assert d["range"]["end"]["line"] == d["range"]["start"]["line"] + 1
        assert d["data"]["lines"] == [line_of[i] for i in d["data"]["exampleIds"]]
        assert d["range"]["start"]["line"] == d["data"]["lines"][0] - 1 if d["data"]["lines"] else 0
        for rel, line in zip(d.get("relatedInformation", []), d["data"]["lines"][1:]):
            assert rel["location"]["uri"] == path.as_uri()
            assert rel["location"]["range"]["start"]["line"] == line - 1
    assert by_code["identical-simplification"]["data"]["exampleIds"] == ["p4"]
    assert by_code["identical-simplification"]["range"]["start"]["line"] == line_of["p4"] - 1
    assert by_code["simplified-longer"]["data"]["exampleIds"] == ["p9", "p10"]
    assert len(by_code["simplified-longer"]["relatedInformation"]) == 1
    # the classification diagnostic: all 12 inputs are full contexts (p4's is ambiguous)
    d = by_code["trained-on-full-context"]
    assert d["severity"] == 1 and len(d["data"]["exampleIds"]) == 11 and "p4" not in d["data"]["exampleIds"]
    # maxExamples caps the examples listed (not the counts)
    r = checked.call("distill/diagnose", {"dataset": "d", "inputs": [p["full"] for p in pairs], "maxExamples": 2})
    d = next(d for d in r["diagnostics"] if d["code"] == "trained-on-full-context")
    assert len(d["data"]["exampleIds"]) == 2 and d["data"]["full"] == 11
    assert r["integrity"]["findings"] == checked.call("distill/diagnose", {"dataset": "d"})["integrity"]["findings"]


# ---------------------------------------------------------------- the context gap

def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def kl_rows(p, q):
    return np.sum(p * (np.log(p) - np.log(q)), axis=-1)


@pytest.mark.parametrize("positions", [1, 3])
def test_context_gap_against_numpy(checked, positions):
    n, v = 6, 5
    pairs = make_pairs(n, seed=8)
    load_inline(checked, "d", pairs)
    rng = np.random.default_rng(positions)
    zf = rng.normal(size=(n, positions, v)).astype(np.float32)
    zs = (zf + rng.normal(scale=0.8, size=zf.shape)).astype(np.float32)
    zq = (zf + rng.normal(scale=1.2, size=zf.shape)).astype(np.float32)
    pf, ps, q = softmax(zf.astype(np.float64)), softmax(zs.astype(np.float64)), softmax(zq.astype(np.float64))
    gap = kl_rows(pf, ps).mean(axis=1)                      # per example, mean over positions
    total = kl_rows(pf, q).mean(axis=1)
    capacity = np.sum(pf * (np.log(ps) - np.log(q)), axis=-1).mean(axis=1)
    simp = kl_rows(ps, q).mean(axis=1)
    r = checked.call("distill/diagnose", {"dataset": "d", "contextGap": {
        "teacherFull": {"logits": zf.tolist()}, "teacherSimplified": {"logits": zs.tolist()}, "student": {"logits": zq.tolist()}}})
    g = r["contextGap"]
    assert [e["id"] for e in g["perExample"]] == [p["id"] for p in pairs]
    for e, want in zip(g["perExample"], gap):
        assert e["kl"] == pytest.approx(want, abs=TOL)
    assert g["spread"]["count"] == n
    assert g["spread"]["mean"] == pytest.approx(gap.mean(), abs=TOL)
    assert g["spread"]["min"] == pytest.approx(gap.min(), abs=TOL) and g["spread"]["max"] == pytest.approx(gap.max(), abs=TOL)
    assert [e["id"] for e in g["largest"]] == [pairs[i]["id"] for i in np.argsort(-gap)]
    s = g["student"]
    assert s["total"] == pytest.approx(total.mean(), abs=TOL)
    assert s["contextGap"] == pytest.approx(gap.mean(), abs=TOL)
    assert s["capacityGap"] == pytest.approx(capacity.mean(), abs=TOL)
    assert s["total"] == pytest.approx(s["contextGap"] + s["capacityGap"], abs=1e-12)
    assert s["againstSimplifiedTeacher"] == pytest.approx(simp.mean(), abs=TOL)
    # the identity holds per example too: KL(p_f‖q) = KL(p_f‖p_s) + E_pf[log(p_s/q)]
    assert np.allclose(total, gap + capacity, atol=1e-12)
    # "large" = at least twice the mean gap and in the top tenth (numpy's linear percentile)
    cut = max(2 * gap.mean(), np.percentile(gap, 90))
    large = [pairs[i]["id"] for i in np.argsort(-gap) if gap[i] >= cut and gap[i] > 0]
    found = [d for d in r["diagnostics"] if d["code"] == "large-context-gap"]
    if large:
        d = found[0]
        assert d["severity"] == 3 and d["data"]["max"] == pytest.approx(gap.max(), abs=TOL)
        assert d["data"]["exampleIds"] == large
        assert d["data"]["threshold"] == pytest.approx(cut, abs=TOL)
    else:
        assert found == []
    assert "context gap accounts for" in r["summary"]


def test_context_gap_with_probabilities_and_without_student(checked):
    pairs = make_pairs(3, seed=9)
    load_inline(checked, "d", pairs)
    pf = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    ps = np.array([[0.5, 0.3, 0.2], [0.2, 0.6, 0.2], [0.3, 0.3, 0.4]])
    r = checked.call("distill/diagnose", {"dataset": "d", "contextGap": {
        "teacherFull": {"probs": pf.tolist()}, "teacherSimplified": {"probs": ps.tolist()}}})
    g = r["contextGap"]
    assert "student" not in g
    want = kl_rows(pf, ps)
    for e, w in zip(g["perExample"], want):
        assert e["kl"] == pytest.approx(w, abs=TOL)
    assert g["perExample"][2]["kl"] == pytest.approx(0, abs=TOL)


def test_context_gap_rows_unmatched_and_shape_mismatch(checked, client):
    pairs = make_pairs(3, seed=10)
    load_inline(checked, "d", pairs)
    rng = np.random.default_rng(0)
    z4 = rng.normal(size=(4, 3)).tolist()
    z4b = rng.normal(size=(4, 3)).tolist()
    r = checked.call("distill/diagnose", {"dataset": "d", "contextGap": {
        "teacherFull": {"logits": z4}, "teacherSimplified": {"logits": z4b}}})
    d = next(d for d in r["diagnostics"] if d["code"] == "teacher-rows-unmatched")
    assert d["severity"] == 2 and d["data"]["unmatchedTeacherRows"] >= 1
    with pytest.raises(RPCError) as e:
        client.call("distill/diagnose", {"dataset": "d", "contextGap": {
            "teacherFull": {"logits": z4}, "teacherSimplified": {"logits": rng.normal(size=(4, 5)).tolist()}}})
    assert e.value.code == 1003 and e.value.data["field"] == "params.contextGap.teacherSimplified"


def test_builtin_models_split(checked):
    """The demo teacher for x, student A standing in for the teacher on x', student B as the student."""
    checked.call("dataset/load", {"name": "demo", "path": "builtin:demo"})
    r = checked.call("distill/diagnose", {"dataset": "demo", "contextGap": {
        "teacherFull": {"path": "builtin:demo"}, "teacherSimplified": {"path": "builtin:demo-student-A"},
        "student": {"path": "builtin:demo-student-B"}}})
    g = r["contextGap"]
    assert g["perExample"][0] == {"id": "ex1", "kl": pytest.approx(0.7 * np.log(7 / 6) + 0.2 * np.log(2 / 3), abs=TOL)}
    s = g["student"]
    assert s["total"] == pytest.approx(s["contextGap"] + s["capacityGap"], abs=1e-12)


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("params, code, field", [
    ({}, -32602, "params.dataset"),
    ({"dataset": "nope"}, 1002, None),
    ({"dataset": "d", "nearThreshold": 0}, -32602, "params.nearThreshold"),
    ({"dataset": "d", "nearThreshold": 1.5}, -32602, "params.nearThreshold"),
    ({"dataset": "d", "maxExamples": 0}, -32602, "params.maxExamples"),
    ({"dataset": "d", "inputs": 3}, -32602, "params.inputs"),
    ({"dataset": "d", "inputs": "d"}, -32602, "params.inputs"),
    ({"dataset": "list"}, -32602, "params.dataset"),
    ({"dataset": "d", "contextGap": {"teacherFull": {"probs": [[0.5, 0.5]]}}}, -32602, "params.contextGap.teacherSimplified"),
    ({"dataset": "d", "contextGap": {"teacherFull": "nope", "teacherSimplified": "nope"}}, 1001, None),
    ({"dataset": "d", "extra": 1}, -32602, "params.extra"),
])
def test_errors(client, params, code, field):
    client.call("dataset/load", {"name": "d", "examples": make_pairs(2)})
    client.call("dataset/load", {"name": "list", "inputs": ["a", "b"]})
    with pytest.raises(RPCError) as e:
        client.call("distill/diagnose", params)
    assert e.value.code == code, e.value.message
    if field:
        assert e.value.data["field"] == field


def test_student_outputs_on_both_contexts(checked):
    """With the student's outputs on x as well as x', diagnose says what the simplification costs it:
    KL(p_f‖q(·|x')) − KL(p_f‖q(·|x)), each checked against numpy."""
    pairs = make_pairs(4, seed=21)
    load_inline(checked, "both", pairs)
    rng = np.random.default_rng(21)
    zf, zs, zq, zqf = (rng.normal(size=(4, 6)) * 2 for _ in range(4))

    def softmax(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    pf, q, qf = softmax(zf), softmax(zq), softmax(zqf)
    r = checked.call("distill/diagnose", {"dataset": "both", "contextGap": {
        "teacherFull": {"logits": zf.tolist()}, "teacherSimplified": {"logits": zs.tolist()},
        "student": {"logits": zq.tolist()}, "studentFull": {"logits": zqf.tolist()}}})
    s = r["contextGap"]["student"]
    total = np.sum(pf * np.log(pf / q), -1).mean()
    on_full = np.sum(pf * np.log(pf / qf), -1).mean()
    assert s["total"] == pytest.approx(total, abs=TOL)
    assert s["onFullContext"] == pytest.approx(on_full, abs=TOL)
    assert "the simplification costs it" in r["summary"]


def test_student_full_needs_the_simplified_student(client):
    from distilld import RPCError

    load_inline(client, "lonely", make_pairs(2, seed=3))
    z = np.zeros((2, 3)).tolist()
    with pytest.raises(RPCError) as e:
        client.call("distill/diagnose", {"dataset": "lonely", "contextGap": {
            "teacherFull": {"logits": z}, "teacherSimplified": {"logits": z}, "studentFull": {"logits": z}}})
    assert e.value.code == -32602 and e.value.data["field"] == "params.contextGap.studentFull"
