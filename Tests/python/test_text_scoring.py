"""Teacher-forced scoring on a dataset of text pairs (issue #13): distill/score with
`{"model": NAME}` as teacher and students and a paired dataset with targets.

The teacher reads `full + separator + target`, each student `simplified + separator + target`,
and the loss is taken at every target token. The reference is transformers on the same GGUF
file (SmolLM2-135M-Instruct, dequantised by transformers itself), its tokenizer and float64
numpy: the context tokenised with special tokens, the target without, the ids joined, one
forward pass per example, log-softmax in float64 at the rows that predict the target tokens.
Every params and result is validated against Protocol/schemas.
"""
import os

import numpy as np
import pytest

from conftest import ROOT, wait_for
from distilld import Cancelled, Client, RPCError
from schema import CheckedClient

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SMOLLM2 = os.environ.get("DISTILLD_SMOLLM2_GGUF") or os.path.join(
    ROOT, ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
# Q4_1 weights dequantised on both sides; the forward passes agree within 1e-3 in log-probability
# (test_models_forward.py), so per-token KL and NLL agree well within this.
TOLERANCE = 5e-3


@pytest.fixture(scope="module")
def reference(smollm2_reference):
    """transformers' tokenizer and model on the same file (conftest.py: loaded once a session)."""
    return smollm2_reference


@pytest.fixture(scope="module")
def daemon(distilld):
    c = Client.start(distilld)
    checked = CheckedClient(c)
    checked.call("model/load", {"name": "smol", "path": SMOLLM2})
    checked.call("dataset/load", {"name": "demo", "path": "builtin:demo"})
    yield checked
    c.close()


def target_rows(reference, context, target):
    """float64 log-softmax rows predicting each target token, and the target ids."""
    tokenizer, model = reference
    ctx = tokenizer(context)["input_ids"]
    tgt = tokenizer(target, add_special_tokens=False)["input_ids"]
    ids = ctx + tgt[:-1]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double().numpy()
    rows = logits[len(ctx) - 1:len(ctx) - 1 + len(tgt)]
    rows = rows - rows.max(axis=1, keepdims=True)
    rows = rows - np.log(np.exp(rows).sum(axis=1, keepdims=True))
    return rows, tgt, len(ctx)


def expected(reference, examples, separator):
    per_example_kl, per_example_nll, agree, targets, contexts = [], [], 0, 0, [0, 0]
    for e in examples:
        t_rows, tgt, n_full = target_rows(reference, e["full"] + separator, e["target"])
        s_rows, tgt_s, n_simple = target_rows(reference, e["simplified"] + separator, e["target"])
        assert tgt == tgt_s
        p = np.exp(t_rows)
        kl = (p * (t_rows - s_rows)).sum(axis=1)
        per_example_kl.append(kl)
        per_example_nll.append(-s_rows[np.arange(len(tgt)), tgt])
        agree += int((t_rows.argmax(axis=1) == s_rows.argmax(axis=1)).sum())
        targets += len(tgt)
        contexts[0] += n_full
        contexts[1] += n_simple
    return per_example_kl, per_example_nll, agree, targets, contexts


@pytest.mark.parametrize("separator", ["\n", " "])
def test_forward_kl_at_every_target_token_matches_transformers(daemon, reference, separator):
    examples = daemon.call("dataset/examples", {"name": "demo", "limit": 100})["examples"]
    kl, _, agree, targets, contexts = expected(reference, examples, separator)
    result = daemon.call("distill/score", {
        "teacher": {"model": "smol"}, "students": {"S": {"model": "smol"}}, "dataset": "demo",
        "prompt": {"separator": separator}, "loss": {"name": "forward_kl"}})
    student = result["students"][0]
    assert result["prompt"] == {"separator": separator, "examples": len(examples), "targetTokens": targets,
                                "positions": max(len(k) for k in kl),
                                "contextTokens": {"teacher": contexts[0], "students": {"S": contexts[1]}}}
    assert student["validPositions"] == targets
    for got, want, e in zip(student["perExample"], kl, examples):
        assert got["id"] == e["id"]
        assert abs(got["loss"] - want.mean()) < TOLERANCE, (e["id"], got["loss"], want.mean())
    overall = np.concatenate(kl).mean()
    assert abs(student["loss"] - overall) < TOLERANCE
    assert student["top1Agreement"]["count"] == agree
    # The worst examples token by token: each token's loss and both models' log-probabilities.
    assert [w["id"] for w in student["worstTokens"]] == [w["id"] for w in student["worst"]]
    tokenizer = reference[0]
    for w in student["worstTokens"]:
        e = next(x for x in examples if x["id"] == w["id"])
        t_rows, tgt, _ = target_rows(reference, e["full"] + separator, e["target"])
        s_rows, _, _ = target_rows(reference, e["simplified"] + separator, e["target"])
        assert w["target"] == e["target"]
        losses = [tok["loss"] for tok in w["tokens"]]
        assert losses == sorted(losses, reverse=True) and len(w["tokens"]) == min(10, len(tgt))
        for tok in w["tokens"]:
            j = tok["position"]
            assert tok["text"] == tokenizer.decode([tgt[j]])
            assert abs(tok["teacher"] - t_rows[j, tgt[j]]) < TOLERANCE
            assert abs(tok["student"] - s_rows[j, tgt[j]]) < TOLERANCE
            assert abs(tok["loss"] - (np.exp(t_rows[j]) * (t_rows[j] - s_rows[j])).sum()) < TOLERANCE
            assert tok["agree"] == (t_rows[j].argmax() == s_rows[j].argmax())
    # The full context helps: the teacher and the student disagree somewhere.
    assert overall > 0.01


def test_the_students_nll_of_the_targets_matches_transformers(daemon, reference):
    examples = daemon.call("dataset/examples", {"name": "demo", "limit": 100})["examples"]
    _, nll, _, _, _ = expected(reference, examples, "\n")
    result = daemon.call("distill/score", {
        "teacher": {"model": "smol"}, "students": {"S": {"model": "smol"}}, "dataset": "demo",
        "loss": {"name": "nll", "labels": "dataset", "reduction": "sequence_sum"}})
    got = {e["id"]: e["loss"] for e in result["students"][0]["perExample"]}
    for e, want in zip(examples, nll):
        assert abs(got[e["id"]] - want.sum()) < TOLERANCE * len(want), (e["id"], got[e["id"]], want.sum())


def rpc_error(daemon, method, params):
    with pytest.raises(RPCError) as info:
        daemon.client.call(method, params)
    return info.value


def test_bad_input_is_named_and_changes_nothing(daemon):
    before = daemon.call("model/list", {})
    daemon.call("dataset/load", {"name": "untargeted", "replace": True, "examples": [
        {"id": "a", "full": "x y", "simplified": "y", "target": "z"}, {"id": "b", "full": "x", "simplified": "x"}]})
    e = rpc_error(daemon, "distill/score", {
        "teacher": {"model": "smol"}, "students": {"S": {"model": "smol"}}, "dataset": "untargeted"})
    assert e.code == -32602 and e.data["field"] == "params.dataset" and e.data["example"] == "b"
    assert "has no target" in e.message

    e = rpc_error(daemon, "distill/score", {"teacher": {"model": "smol"}, "students": {"S": {"model": "smol"}}})
    assert e.code == -32602 and e.data["field"] == "params.teacher"

    e = rpc_error(daemon, "distill/score", {
        "teacher": {"model": "smol"}, "students": {"S": "some-teacher"}, "dataset": "demo"})
    assert e.code == -32602 and e.data["field"] == "params.students.S"

    e = rpc_error(daemon, "distill/score", {
        "teacher": {"model": "nope"}, "students": {"S": {"model": "smol"}}, "dataset": "demo"})
    assert e.code == 1007 and e.data["name"] == "nope"

    # A student with another vocabulary: an n-gram model over words.
    arpa = os.path.join(ROOT, "Tests", "python", "fixtures", "ngram", "kn3.arpa")
    daemon.call("model/load", {"name": "words", "path": arpa, "replace": True})
    e = rpc_error(daemon, "distill/score", {
        "teacher": {"model": "smol"}, "students": {"S": {"model": "words"}}, "dataset": "demo"})
    assert e.code == 1003 and e.data["teacherVocab"] == 49152 and e.data["studentVocab"] == 28
    assert "byteLevelBPE" in e.message and "words" in e.message
    daemon.call("model/unload", {"name": "words"})

    # Context and target longer than the window (8192): named with the example and both lengths.
    daemon.call("dataset/load", {"name": "long", "replace": True, "examples": [
        {"id": "huge", "full": "word " * 9000, "simplified": "word", "target": "end"}]})
    e = rpc_error(daemon, "distill/score", {
        "teacher": {"model": "smol"}, "students": {"S": {"model": "smol"}}, "dataset": "long"})
    assert e.code == -32602 and e.data["example"] == "huge" and e.data["window"] == 8192 and e.data["tokens"] > 8192
    assert daemon.call("model/list", {}) == before


def keyed_dataset(seed=5, count=200):
    """Pairs whose full context names a key that decides the target, and whose simplified context
    does not ("... the item7 is" → "... it is"; target: item7's colour)."""
    import random
    rng = random.Random(seed)
    colours = "red green blue yellow black white purple orange".split()
    keys = [f"item{i}" for i in range(40)]
    colour = {k: rng.choice(colours) for k in keys}
    filler = "we saw many things at the market today and some were old while others looked new".split()
    examples = []
    for i in range(count):
        key = keys[i % len(keys)]
        full = " ".join(rng.choice(filler) for _ in range(rng.randint(4, 8))) + f" the {key} is"
        simplified = " ".join(rng.choice(filler) for _ in range(3)) + " it is"
        examples.append({"id": f"e{i}", "full": full, "simplified": simplified, "target": colour[key]})
    return examples


def test_behaviour_names_the_dataset_each_n_gram_student_learnt_from(daemon):
    """Students whose training is known: trigram models built from D (full contexts and targets)
    and from D' (simplified contexts and targets). Each must be judged as what it is."""
    daemon.call("dataset/load", {"name": "keyed", "replace": True, "examples": keyed_dataset()})
    for side in ["full", "simplified"]:
        daemon.call("model/load", {"name": f"ngram-{side}", "replace": True, "build": {
            "dataset": "keyed", "order": 3, "text": side, "withTarget": True, "discountFallback": [0.5, 1, 1.5]}})
        b = daemon.call("distill/diagnose", {
            "dataset": "keyed", "behaviour": {"student": f"ngram-{side}"}, "maxExamples": 5})["behaviour"]
        assert b["verdict"] == side, b["evidence"]
        assert b["confidence"] > 0.999 and b["teacher"] is None and b["kl"] == {"full": None, "simplified": None}
        assert len(b["deciding"]) == 5 and b["targetTokens"] == 200
        better_full = b["nll"]["full"] < b["nll"]["simplified"]
        assert better_full == (side == "full")
        signs = b["signs"]
        assert signs["positive" if side == "full" else "negative"] > 150
        # The advantage is what the two NLLs say, example by example.
        for e in b["examples"]:
            assert e["advantage"] == pytest.approx(e["nllSimplified"] - e["nllFull"])
        daemon.call("model/unload", {"name": f"ngram-{side}"})


def test_behaviour_numbers_match_transformers(daemon, reference):
    """SmolLM2 as teacher and student on the demo pairs: the student's NLL of the targets reading
    each context, and the context gap, against transformers in float64."""
    examples = daemon.call("dataset/examples", {"name": "demo", "limit": 100})["examples"]
    b = daemon.call("distill/diagnose", {
        "dataset": "demo", "behaviour": {"student": "smol", "teacher": "smol"}, "maxExamples": 100})["behaviour"]
    assert b["teacher"] == "smol" and b["separator"] == "\n"
    by_id = {e["id"]: e for e in b["examples"]}
    all_gaps, all_nll = [], {"full": [], "simplified": []}
    for e in examples:
        t_rows, tgt, _ = target_rows(reference, e["full"] + "\n", e["target"])
        s_rows, _, _ = target_rows(reference, e["simplified"] + "\n", e["target"])
        nll_full = -t_rows[np.arange(len(tgt)), tgt]
        nll_simplified = -s_rows[np.arange(len(tgt)), tgt]
        gap = (np.exp(t_rows) * (t_rows - s_rows)).sum(axis=1)
        got = by_id[e["id"]]
        assert abs(got["nllFull"] - nll_full.mean()) < TOLERANCE
        assert abs(got["nllSimplified"] - nll_simplified.mean()) < TOLERANCE
        assert abs(got["contextGap"] - gap.mean()) < TOLERANCE
        all_gaps.append(gap)
        all_nll["full"].append(nll_full)
        all_nll["simplified"].append(nll_simplified)
    assert abs(b["nll"]["full"] - np.concatenate(all_nll["full"]).mean()) < TOLERANCE
    assert abs(b["perplexity"]["simplified"] - np.exp(np.concatenate(all_nll["simplified"]).mean())) < 10 * TOLERANCE
    assert abs(b["contextGap"] - np.concatenate(all_gaps).mean()) < TOLERANCE
    # The student is the teacher: reading the full context it is the teacher exactly, and reading
    # the simplified one its KL to the teacher is the context gap.
    assert abs(b["kl"]["full"]) < 1e-6
    assert abs(b["kl"]["simplified"] - b["contextGap"]) < 1e-9
    assert b["verdict"] in ("full", "simplified", "undecided")
    # The split KL(p_f ‖ q) = context gap + capacity gap, overall, per example and per token; with
    # the teacher as student the capacity gap is 0 and the context gap is all of it.
    assert b["split"]["total"] == b["kl"]["simplified"] and b["split"]["contextGap"] == b["contextGap"]
    assert abs(b["split"]["capacityGap"]) < 1e-9
    for row in b["examples"]:
        assert abs(row["kl"] - row["contextGap"]) < 1e-9 and abs(row["capacityGap"]) < 1e-9
    assert b["deciding"]
    tokenizer = reference[0]
    for row in b["deciding"]:
        e = next(x for x in examples if x["id"] == row["id"])
        t_rows, tgt, _ = target_rows(reference, e["full"] + "\n", e["target"])
        s_rows, _, _ = target_rows(reference, e["simplified"] + "\n", e["target"])
        gap = (np.exp(t_rows) * (t_rows - s_rows)).sum(axis=1)
        assert [t["position"] for t in row["tokens"]] == list(range(len(tgt)))
        for t in row["tokens"]:
            j = t["position"]
            assert t["text"] == tokenizer.decode([tgt[j]])
            assert abs(t["contextGap"] - gap[j]) < TOLERANCE
            assert abs(t["kl"] - t["contextGap"]) < 1e-9 and t["capacityGap"] == t["kl"] - t["contextGap"]
        assert abs(np.mean([t["contextGap"] for t in row["tokens"]]) - row["contextGap"]) < 1e-9


def test_export_writes_the_teachers_top_k_at_every_target_token(daemon, reference, tmp_path):
    """teacher/export against transformers: the kept ids are a top k of the reference row and
    their log-probabilities match; the tail mass, mask, targets and metadata are what they claim;
    the file loads back into distilld as a top-k teacher and into numpy with `safetensors` alone."""
    from safetensors import safe_open
    from safetensors.numpy import load_file
    examples = daemon.call("dataset/examples", {"name": "demo", "limit": 100})["examples"]
    out = str(tmp_path / "targets.safetensors")
    r = daemon.call("teacher/export", {"model": "smol", "dataset": "demo", "path": out, "k": 8, "workDoneToken": "x"})
    t = load_file(out)
    with safe_open(out, "np") as f:
        meta = f.metadata()
    n, T = len(examples), r["positions"]
    assert t["topk_logprobs"].shape == (n, T, 8) and t["topk_indices"].shape == (n, T, 8) and t["mask"].shape == (n, T)
    assert meta["format"] == "distilld-topk/1" and meta["ids"] == '["' + '","'.join(e["id"] for e in examples) + '"]'
    assert meta["vocab_size"] == "49152" and meta["k"] == "8" and meta["context"] == "full"
    assert r["bytes"] == os.path.getsize(out) and r["targetTokens"] == int(t["mask"].sum())
    tails = []
    for i, e in enumerate(examples):
        rows, tgt, _ = target_rows(reference, e["full"] + "\n", e["target"])
        assert list(t["mask"][i]) == [1] * len(tgt) + [0] * (T - len(tgt))
        assert list(t["targets"][i][:len(tgt)]) == tgt and all(x == -100 for x in t["targets"][i][len(tgt):])
        for j in range(len(tgt)):
            ids, values = t["topk_indices"][i, j], t["topk_logprobs"][i, j]
            assert len(set(ids.tolist())) == 8 and list(values) == sorted(values, reverse=True)
            assert np.abs(values - rows[j, ids]).max() < TOLERANCE
            # A top 8: nothing outside it beats the 8th kept value by more than the tolerance.
            outside = np.delete(rows[j], ids)
            assert outside.max() <= values[-1] + TOLERANCE
            tail = 1 - np.exp(values.astype(np.float64)).sum()
            assert abs(t["tail_mass"][i, j] - tail) < 1e-6
            tails.append(tail)
    assert abs(r["tailMass"]["mean"] - np.mean(tails)) < 1e-6 and abs(r["tailMass"]["max"] - max(tails)) < 1e-6
    info = daemon.call("teacher/load", {"name": "exported", "path": out, "replace": True})
    assert info["layout"] == "topk" and info["k"] == 8 and info["examples"] == n and info["hasMask"] and info["warnings"] == []
    daemon.call("teacher/unload", {"name": "exported"})

    # Bad paths are refused before anything runs, and nothing is left behind.
    for path, words in [(out, "exists; pass overwrite: true"), (str(tmp_path / "no" / "x.safetensors"), "does not exist"),
                        (str(tmp_path), "is a directory")]:
        e = rpc_error(daemon, "teacher/export", {"model": "smol", "dataset": "demo", "path": path})
        assert e.code == -32602 and e.data["field"] == "params.path" and words in e.message
    assert sorted(os.listdir(tmp_path)) == ["targets.safetensors"]
    # With overwrite the file is replaced whole (the simplified contexts this time).
    r2 = daemon.call("teacher/export", {"model": "smol", "dataset": "demo", "path": out, "k": 3, "context": "simplified",
                                        "overwrite": True})
    assert r2["k"] == 3 and load_file(out)["topk_indices"].shape == (n, T, 3)
    assert sorted(os.listdir(tmp_path)) == ["targets.safetensors"]


def sequence_logprob(reference, prompt, text):
    """log p(text | prompt) under transformers: the prompt with special tokens, the text without."""
    tokenizer, model = reference
    ctx = tokenizer(prompt)["input_ids"]
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ctx + ids[:-1]])).logits[0].double().numpy()
    rows = logits[len(ctx) - 1:]
    rows = rows - rows.max(axis=1, keepdims=True)
    rows = rows - np.log(np.exp(rows).sum(axis=1, keepdims=True))
    return float(rows[np.arange(len(ids)), ids].sum())


def test_sequence_level_targets_from_generation(daemon, reference):
    """teacher/generate samples the teacher on every example (greedy equals transformers'
    generate; a seed repeats), then distill/sequence takes those candidates with both sides'
    probabilities computed by running the models: the exact cross-entropy over the set and the
    teacher mass it covers, against transformers in float64."""
    tokenizer, model = reference
    greedy = daemon.call("teacher/generate", {"model": "smol", "dataset": "demo", "n": 1, "maxTokens": 6,
                                              "temperature": 0, "limit": 2})
    assert [e["id"] for e in greedy["examples"]] == ["ex1", "ex2"]
    for e in greedy["examples"]:
        ctx = tokenizer(e["prompt"])["input_ids"]
        with torch.no_grad():
            out = model.generate(torch.tensor([ctx]), do_sample=False, max_new_tokens=6,
                                 attention_mask=torch.ones(1, len(ctx), dtype=torch.long))[0][len(ctx):].tolist()
        c = e["candidates"][0]
        assert c["tokens"] == out[:len(c["tokens"])] and (c["finishReason"] == "eos" or len(c["tokens"]) == 6)
    params = {"model": "smol", "dataset": "demo", "n": 3, "maxTokens": 5, "temperature": 1.0, "seed": 11, "limit": 1}
    sampled = daemon.call("teacher/generate", params)
    assert daemon.call("teacher/generate", params) == sampled
    example = daemon.call("dataset/examples", {"name": "demo", "limit": 1})["examples"][0]
    candidates = list(dict.fromkeys(c["text"] for c in sampled["examples"][0]["candidates"] if c["text"]))
    full, simplified = example["full"] + "\n", example["simplified"] + "\n"
    r = daemon.call("distill/sequence", {
        "teacher": {"model": "smol", "prompt": full}, "candidates": candidates,
        "students": {"S": {"model": "smol", "prompt": simplified}}})
    p = np.array([np.exp(sequence_logprob(reference, full, c)) for c in candidates])
    q = np.array([np.exp(sequence_logprob(reference, simplified, c)) for c in candidates])
    assert r["teacherCoverage"] == pytest.approx(p.sum(), rel=1e-2)
    s = r["students"][0]
    assert s["crossEntropy"] == pytest.approx(-(p * np.log(q)).sum(), rel=1e-2)
    assert [c["label"] for c in s["candidates"]] == candidates
    for got, want_p, want_q in zip(s["candidates"], p, q):
        assert got["p"] == pytest.approx(want_p, rel=1e-2) and got["q"] == pytest.approx(want_q, rel=1e-2)
    e = rpc_error(daemon, "distill/sequence", {"teacher": {"model": "smol", "prompt": full},
                                               "students": {"S": {"model": "smol", "prompt": simplified}}})
    assert e.code == -32602 and e.data["field"] == "params.candidates"


def cycled_demo(daemon, count):
    """`count` examples cycling through the demo pairs, ids made unique, the demo's longest target
    first so that every prefix of 32 or more has the whole run's positions."""
    demo = daemon.call("dataset/examples", {"name": "demo", "limit": 100})["examples"]
    demo.sort(key=lambda e: -len(e["target"]))
    keep = ("full", "simplified", "target")
    return [dict({k: demo[i % len(demo)][k] for k in keep}, id=f"{demo[i % len(demo)]['id']}-{i}") for i in range(count)]


def test_a_cancelled_score_gives_the_examples_it_finished_marked_partial(daemon):
    """$/cancelRequest after the first $/progress: the -32800 carries in its data the result over
    the examples scored so far (parts of at most 32 examples), marked partial in itself; it is,
    value for value, the result of an uncancelled run on those examples alone."""
    import threading
    from schema import validate_ref

    examples = cycled_demo(daemon, 192)
    daemon.call("dataset/load", {"name": "many", "replace": True, "examples": examples})
    params = {"teacher": {"model": "smol"}, "students": {"S": {"model": "smol"}}, "loss": {"name": "forward_kl"},
              "perExample": True, "worst": 5}
    client = daemon.client
    first_progress = threading.Event()

    def on_progress(value):
        if not first_progress.is_set():
            first_progress.set()
            client.cancel(future)

    future = client.call_async("distill/score", dict(params, dataset="many"), progress=on_progress)
    with pytest.raises(Cancelled) as info:
        future.result(600)
    assert first_progress.is_set()
    error = info.value
    assert error.code == -32800
    data = error.data
    assert (error.partial, error.examples_done, error.examples) == (data["partial"], data["examplesDone"], data["examples"])
    validate_ref(data, "common.json#/$defs/cancelledScoreData")
    k, n = data["examplesDone"], data["examples"]
    assert n == len(examples) and 0 < k < n and k % 32 == 0, (k, n)
    partial = data["partial"]
    assert partial["partial"] == {"examplesDone": k, "examples": n}
    assert partial["prompt"]["examples"] == k and partial["teacher"]["examples"] == k
    assert [e["id"] for e in partial["students"][0]["perExample"]] == [e["id"] for e in examples[:k]]
    # The same examples scored whole: every value the same, bit for bit (the same code ran on the
    # same parts); only the mark differs.
    daemon.call("dataset/load", {"name": "first", "replace": True, "examples": examples[:k]})
    whole = daemon.call("distill/score", dict(params, dataset="first"))
    assert "partial" not in whole
    assert {key: value for key, value in partial.items() if key != "partial"} == whole
    daemon.call("dataset/unload", {"name": "many"})
    daemon.call("dataset/unload", {"name": "first"})


def test_a_cancelled_export_leaves_nothing_behind(daemon, tmp_path):
    """teacher/export cancelled after its first $/progress: a bare -32800 (no partial file: one
    missing rows would load as a whole teacher), its temporary file removed, and the file it
    would have replaced unchanged."""
    import threading

    daemon.call("dataset/load", {"name": "many-export", "replace": True, "examples": cycled_demo(daemon, 192)})
    path = tmp_path / "targets.safetensors"
    path.write_bytes(b"the file an export would replace")
    client = daemon.client
    first_progress = threading.Event()

    def on_progress(value):
        if not first_progress.is_set():
            first_progress.set()
            client.cancel(future)

    future = client.call_async("teacher/export", {"model": "smol", "dataset": "many-export", "path": str(path),
                                                  "k": 5, "overwrite": True}, progress=on_progress)
    with pytest.raises(Cancelled) as info:
        future.result(600)
    assert first_progress.is_set()
    assert info.value.code == -32800 and info.value.partial is None and info.value.data is None
    # An export names a file, so it runs on a thread of its own and the -32800 goes out at once;
    # the export stops at the end of the part in progress and removes its temporary file then.
    assert wait_for(lambda: sorted(os.listdir(tmp_path)) == ["targets.safetensors"], timeout=120), os.listdir(tmp_path)
    assert path.read_bytes() == b"the file an export would replace"
    daemon.call("dataset/unload", {"name": "many-export"})
