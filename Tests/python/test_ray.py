"""distilld.ray (issue #15): sharded scoring, exports and the context gap on a local Ray cluster.

Two workers, each owning a private daemon, on a 2-CPU local Ray started once for the module (about
0.5 GiB and a few seconds). The sharded answers are compared with one daemon's on the same data,
bit for bit: the merge must reproduce the aggregates (from per-example sums with math.fsum), the
spread, the worst list, the ranking and the margin exactly, for every reduction, on files with
masked rows and shards that cut a file mid-way. The per-example losses are also checked against
float64 numpy on the files themselves.
"""

import json
import math
import os
import random
import signal
import threading
import time

import numpy as np
import pytest

from conftest import ROOT

ray = pytest.importorskip("ray")

from distilld import Client  # noqa: E402
from distilld.ray import (JobCancelled, ShardError, WorkerPool, diagnose_sharded, export_sharded,  # noqa: E402
                          merge_scores, score_sharded, spread)
from safetensors.numpy import load_file, save_file  # noqa: E402

REDUCTIONS = ["mean", "sum", "batchmean", "none", "sequence_sum", "sequence_mean"]
N, T, V = 11, 4, 9


@pytest.fixture(scope="module")
def pool(distilld):
    # The actors import distilld.ray: the workers Ray starts inherit this PYTHONPATH.
    clients = os.path.join(ROOT, "Clients", "python")
    os.environ["PYTHONPATH"] = clients + os.pathsep + os.environ.get("PYTHONPATH", "")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 << 20, log_to_driver=False,
             configure_logging=False)
    p = WorkerPool(2, binary=distilld)
    yield p
    # The daemons end with their actors: one actor killed outright (no atexit, no stop: its daemon
    # sees its pipes close), the other closed.
    places = ray.get([a.where.remote() for a in p.actors])
    os.kill(places[0]["pid"], signal.SIGKILL)
    p.close()
    ray.shutdown()
    for pid in [w["daemonPid"] for w in places]:
        for _ in range(50):
            if not alive(pid):
                break
            time.sleep(0.1)
        assert not alive(pid), pid


def alive(pid):
    """A process that has not exited (a zombie has: it waits only for its parent to reap it)."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def single(distilld):
    c = Client.start(distilld)
    yield c
    c.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A teacher and three students, [N, T, V] logits with masks: example 3 wholly masked, others
    partly; examples 7 and 8 identical (tied losses); student C puts −∞ where the teacher has mass
    in example 5 (an infinite loss)."""
    d = tmp_path_factory.mktemp("ray-files")
    rng = np.random.default_rng(15)
    mask = (rng.random((N, T)) > 0.3).astype(np.uint8)
    mask[:, 0] = 1
    mask[3] = 0
    out = {}
    teacher = (rng.standard_normal((N, T, V)) * 2).astype(np.float32)
    students = {k: (teacher + rng.standard_normal((N, T, V)) * s).astype(np.float32)
                for k, s in (("A", 0.5), ("B", 1.0), ("C", 0.7))}
    for side in [teacher, *students.values()]:
        side[8] = side[7]
    mask[8] = mask[7]
    students["C"][5, 0, 2] = -np.inf
    for name, logits in [("teacher", teacher), *students.items()]:
        path = str(d / f"{name}.safetensors")
        save_file({"logits": logits, "mask": mask}, path)
        out[name] = path
        # The same rows split in two files, cut inside the masked run, for shards that name their own files.
        for part, rows in (("0", slice(0, 6)), ("1", slice(6, N))):
            save_file({"logits": np.ascontiguousarray(logits[rows]), "mask": np.ascontiguousarray(mask[rows])},
                      str(d / f"{name}-{part}.safetensors"))
    out["dir"] = str(d)
    out["arrays"] = (teacher, students, mask)
    bad = d / "bad.safetensors"
    bad.write_bytes(open(out["A"], "rb").read()[:200])  # truncated mid-header
    out["bad"] = str(bad)
    return out


def bits(x):
    """A value's exact identity: floats by their bits (so 0.0 and −0.0 differ), containers item by item."""
    if isinstance(x, float):
        return ("f", x.hex())
    if isinstance(x, dict):
        return {k: bits(v) for k, v in x.items()}
    if isinstance(x, list):
        return [bits(v) for v in x]
    return x


def assert_same(merged, one, sources=True):
    """Every member the daemon gives equals the merged one exactly, except the side means (entropy,
    tail mass), which are merged weighted by counts: equal up to rounding, as the daemon's own
    part-wise join documents. `sources=False`: shards read other files than the one request."""
    if not sources:
        merged, one = json.loads(json.dumps(merged)), json.loads(json.dumps(one))
        for r in (merged, one):
            for side in [r["teacher"], *r["students"]]:
                side.pop("source")
    for key in ("loss", "teacher", "ranking", "best", "margin", "matching", "prompt"):
        assert bits(merged.get(key)) == bits(one.get(key)), key
    for m, o in zip(merged["students"], one["students"], strict=True):
        for key, value in o.items():
            if key in ("entropy", "tail"):
                for k, v in value.items():
                    if isinstance(v, float):
                        assert m[key][k] == pytest.approx(v, rel=1e-12, abs=1e-15), (o["name"], key, k)
                continue
            assert bits(m[key]) == bits(value), (o["name"], key)


def files_params(files, reduction, **more):
    return {"teacher": {"path": files["teacher"]},
            "students": {k: {"path": files[k]} for k in "ABC"},
            "loss": {"name": "forward_kl", "reduction": reduction}, "worst": 4, **more}


def forward_kl_per_example(files):
    """float64 numpy: per example, the sum of forward KL over its valid positions, and their count."""
    teacher, students, mask = files["arrays"]
    out = {}
    lp = teacher.astype(np.float64) - np.logaddexp.reduce(teacher.astype(np.float64), axis=-1, keepdims=True)
    for k, s in students.items():
        with np.errstate(invalid="ignore", divide="ignore"):
            lq = s.astype(np.float64) - np.logaddexp.reduce(s.astype(np.float64), axis=-1, keepdims=True)
            kl = (np.exp(lp) * (lp - lq)).sum(-1)
        out[k] = ((kl * mask).sum(-1), mask.sum(-1))
    return out


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_sharded_scores_equal_one_daemons_bit_for_bit(pool, single, files, reduction):
    one = single.call("distill/score", files_params(files, reduction))
    reference = forward_kl_per_example(files)
    for shards in (3, 4):  # 11 examples: shards of 4, 4, 3 and 3, 3, 3, 2, both cutting mid-file
        merged = score_sharded(files["teacher"], {k: files[k] for k in "ABC"}, None,
                               {"name": "forward_kl", "reduction": reduction}, shards=shards, workers=pool, worst=4)
        assert_same(merged, one)
        assert [s["range"]["count"] for s in merged["shards"]] == ([4, 4, 3] if shards == 3 else [3, 3, 3, 2])
        assert merged["bytesMoved"]["toWorkers"] > 0 and merged["bytesMoved"]["fromWorkers"] > 0
    # The merged per-example sums against float64 numpy, independent of both.
    for s in merged["students"]:
        sums, valid = reference[s["name"]]
        got = [math.inf if e["sum"] == "Infinity" else e["sum"] for e in s["perExample"]]
        assert [e["valid"] for e in s["perExample"]] == valid.tolist()
        for g, want in zip(got, sums):
            assert (math.isinf(g) and math.isinf(want)) or abs(g - want) < 1e-5 * max(1, abs(want))


def test_shards_that_name_their_own_files_merge_as_one_file(pool, single, files):
    one = single.call("distill/score", files_params(files, "mean"))
    d = files["dir"]
    shards = [{"teacher": f"{d}/teacher-{i}.safetensors", "students": {k: f"{d}/{k}-{i}.safetensors" for k in "ABC"}}
              for i in "01"]
    merged = score_sharded(None, None, shards, {"name": "forward_kl"}, workers=pool, worst=4)
    # Rows without ids are numbered on from the shard before, as in the single file.
    assert_same(merged, one, sources=False)
    assert merged["teacher"]["source"] == [s["teacher"] for s in shards]
    assert merged["students"][0]["source"] == [s["students"]["A"] for s in shards]


def test_spread_is_the_daemons_definition():
    """The spread against numpy (percentiles, population std) on random values, and the rules at
    the edges (no values; +∞ sorts last and makes the mean and std +∞)."""
    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 100):
        v = rng.exponential(size=n).tolist()
        s = spread(v)
        assert s["count"] == n and s["min"] == min(v) and s["max"] == max(v)
        for key, q in (("p50", 50), ("p90", 90), ("p99", 99)):
            assert s[key] == pytest.approx(np.percentile(v, q), rel=1e-14)
        assert s["mean"] == pytest.approx(np.mean(v), rel=1e-14) and s["std"] == pytest.approx(np.std(v), rel=1e-12)
    assert spread([])["count"] == 0 and spread([])["p99"] == 0.0
    s = spread([1.0, math.inf, 2.0], wire=True)
    assert s["max"] == "Infinity" and s["mean"] == "Infinity" and s["std"] == "Infinity" and s["min"] == 1.0


def test_merge_does_not_depend_on_where_the_shards_cut():
    """Synthetic per-example sums (some exactly cancelling in float64, so a plain running sum would
    depend on the order): every cut of the same examples merges to the same bits, and the mean is
    math.fsum of all sums over all valid positions."""
    rng = random.Random(7)
    n = 40
    sums = [rng.choice([1e16, -1e16, 1.0, 3.5e-3, rng.random()]) for _ in range(n)]
    valid = [rng.choice([0, 1, 2, 5]) for _ in range(n)]
    sums = [s if c else 0.0 for s, c in zip(sums, valid)]

    def shard(lo, hi):
        per = [{"id": f"e{i}", "loss": sums[i] / valid[i] if valid[i] else 0.0, "sum": sums[i], "valid": valid[i]}
               for i in range(lo, hi)]
        student = {"name": "A", "loss": 0.0, "source": "x", "validPositions": sum(valid[lo:hi]), "perExample": per,
                   "spread": {}, "worst": [], "top1Agreement": {"count": lo % 2, "rate": 0.5},
                   "entropy": {"teacher": None, "student": None, "crossEntropy": None}}
        return {"loss": {"name": "forward_kl", "reduction": "mean"},
                "teacher": {"source": "x", "examples": hi - lo, "positions": 5, "vocab": 3, "kind": "logits",
                            "layout": "dense"}, "students": [student]}

    results = []
    for cuts in ([20], [1, 2, 39], list(range(1, 40)), [13, 27]):
        edges = [0, *cuts, n]
        merged = merge_scores([shard(a, b) for a, b in zip(edges, edges[1:])])
        del merged["students"][0]["top1Agreement"]  # synthetic counts, not the point here
        results.append(bits(merged))
    assert all(r == results[0] for r in results)
    merged = merge_scores([shard(0, n)])
    assert merged["students"][0]["loss"] == math.fsum(sums) / sum(valid)
    assert merged["students"][0]["top1Agreement"]["count"] == 0
    with pytest.raises(ValueError, match="two shards"):
        merge_scores([shard(0, 5), shard(3, 8)])


def test_a_killed_daemon_is_restarted_and_its_shard_retried(pool, single, files):
    one = single.call("distill/score", files_params(files, "sequence_mean"))
    killed = []

    def on_progress(value):
        # After the first shard is done, kill every worker's daemon: shards running now die under
        # their request, later ones find the daemon dead.
        if not killed and value["kind"] == "report":
            for pid in pool.daemon_pids():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    merged = score_sharded(files["teacher"], {k: files[k] for k in "ABC"}, None,
                           {"name": "forward_kl", "reduction": "sequence_mean"}, shards=6, workers=pool, worst=4,
                           progress=on_progress)
    assert killed and sum(s["restarts"] for s in merged["shards"]) >= 1
    assert set(pool.daemon_pids()).isdisjoint(killed)
    assert_same(merged, one)


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """768 x 32000 float32 logits (98 MB): shards of it with many students last seconds."""
    path = str(tmp_path_factory.mktemp("ray-big") / "big.safetensors")
    save_file({"logits": np.random.default_rng(1).standard_normal((768, 32000), dtype=np.float32)}, path)
    yield path
    os.remove(path)


def _cpu_ticks(pid):
    """User + system CPU time of a process, in clock ticks (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_a_daemon_killed_under_its_request_is_replaced_and_the_shard_run_again(pool, single, big, files):
    """Kill worker 0's daemon while its shard's request runs: the shard is run again on a new daemon
    and the answer is one daemon's. "Runs" is seen from the daemon itself, idle until the request
    comes, burning CPU once it has it (at least 50 ms of it before the kill), not from progress
    reports, which a fast machine may finish both shards without sending."""
    students = {f"S{k}": big for k in range(24)}
    loss = {"name": "forward_kl", "studentTemperature": 2.0}
    one = single.call("distill/score", {"teacher": {"path": big}, "students": {k: {"path": v} for k, v in students.items()},
                                        "loss": loss, "worst": 3})
    victim = pool.daemon_pids()[0]
    idle = _cpu_ticks(victim)
    killed = []

    def kill_when_busy():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if _cpu_ticks(victim) - idle >= max(1, os.sysconf("SC_CLK_TCK") // 20):
                    os.kill(victim, signal.SIGKILL)
                    killed.append(victim)
                    return
            except (FileNotFoundError, ProcessLookupError):
                return
            time.sleep(0.002)

    watcher = threading.Thread(target=kill_when_busy)
    watcher.start()
    merged = score_sharded(big, students, None, loss, shards=2, workers=pool, worst=3)
    watcher.join()
    assert killed and merged["shards"][0]["restarts"] == 1 and merged["shards"][1]["restarts"] == 0
    assert victim not in pool.daemon_pids()
    assert_same(merged, one)


def test_a_bad_file_names_its_shard_worker_and_file(pool, files):
    d = files["dir"]
    shards = [{"teacher": f"{d}/teacher-{i}.safetensors", "students": {"A": f"{d}/A-{i}.safetensors"}} for i in "01"]
    shards[1]["students"]["A"] = files["bad"]
    with pytest.raises(ShardError) as e:
        score_sharded(None, None, shards, {"name": "forward_kl"}, workers=pool)
    assert e.value.shard == 1 and e.value.worker in pool.names and e.value.files[0] == files["bad"]
    assert "shard 1" in str(e.value) and files["bad"] in str(e.value) and e.value.worker in str(e.value)
    assert e.value.code == 1004 and e.value.data["file"] == files["bad"]
    # The pool goes on working after a failure.
    merged = score_sharded(files["teacher"], {"A": files["A"]}, None, {"name": "forward_kl"}, shards=2, workers=pool)
    assert merged["students"][0]["validPositions"] == int(files["arrays"][2].sum())


def test_progress_and_cancelling_the_job_stop_every_shard(pool, big):
    """Shards long enough to report progress (64 students' JSD over 384 x 32000 logits each, a few
    seconds; the daemon reports after half a second): the
    job's one progress callback sees the shards' `$/progress` (a percentage between 0 and 100 before
    any shard is done), and cancelling then sends `$/cancelRequest` to every daemon, whose requests
    answer -32800."""
    path = big
    cancel = threading.Event()
    seen = []

    def on_progress(value):
        seen.append(value)
        if value["kind"] == "report" and 0 < value["percentage"] and value["message"] == "0/2 shards":
            cancel.set()

    with pytest.raises(JobCancelled) as e:
        score_sharded(path, {f"S{k}": path for k in range(64)}, None, {"name": "jsd", "studentTemperature": 2.0},
                      shards=2, workers=pool, progress=on_progress, cancel=cancel)
    assert seen[0]["kind"] == "begin" and seen[-1] == {"kind": "end", "percentage": 100, "message": "cancelled"}
    assert cancel.is_set() and sorted(s["shard"] for s in e.value.stopped) == [0, 1]
    assert [s["code"] for s in e.value.stopped] == [-32800, -32800], e.value.stopped
    # The daemons go on serving.
    merged = score_sharded("builtin:demo", {"A": "builtin:demo-student-A"}, None, {}, shards=2, workers=pool)
    assert merged["best"] == "A"


# -- models on a paired dataset -------------------------------------------------------------------

def paired(path, count=30, seed=4):
    """Pairs whose full context names the key that decides the target and whose simplified context
    does not; some targets two words long, so shorter ones are masked."""
    rng = random.Random(seed)
    colours = "red green blue yellow black white".split()
    keys = [f"item{i}" for i in range(8)]
    colour = {k: rng.choice(colours) for k in keys}
    filler = "we saw many things at the market today some old some new".split()
    with open(path, "w") as f:
        for i in range(count):
            key = keys[i % len(keys)]
            target = colour[key] if i % 3 else f"dark {colour[key]}"
            f.write(json.dumps({"id": f"e{i}", "full": " ".join(rng.choice(filler) for _ in range(4)) + f" the {key} is",
                                "simplified": " ".join(rng.choice(filler) for _ in range(3)) + " it is",
                                "target": target}) + "\n")
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory, single):
    path = paired(str(tmp_path_factory.mktemp("ray-data") / "pairs.jsonl"))
    datasets = {"pairs": {"path": path}}
    # Two n-gram models over the same text (so the same word vocabulary): the teacher a trigram, the
    # student a bigram.
    build = {"dataset": "pairs", "text": "full", "withTarget": True, "discountFallback": [0.5, 1, 1.5]}
    models = {"full": {"build": dict(build, order=3)}, "short": {"build": dict(build, order=2)}}
    single.call("dataset/load", {"name": "pairs", "path": path, "replace": True})
    for name, params in models.items():
        single.call("model/load", dict(params, name=name, replace=True))
    return {"path": path, "datasets": datasets, "models": models}


def test_teacher_forced_scores_on_a_dataset_merge_exactly(pool, single, models):
    for reduction in ("mean", "none"):
        loss = {"name": "forward_kl", "reduction": reduction}
        one = single.call("distill/score", {"teacher": {"model": "full"}, "students": {"S": {"model": "short"}},
                                            "dataset": "pairs", "loss": loss, "worst": 3})
        assert one["teacher"]["positions"] == 2 and one["students"][0]["validPositions"] < 60
        merged = score_sharded({"model": "full"}, {"S": {"model": "short"}}, models["path"], loss, shards=4,
                               workers=pool, models=models["models"], datasets=models["datasets"], worst=3)
        assert_same(merged, one)


def test_context_gap_over_shards(pool, single, models):
    """The teacher against itself reading x′ is the context gap; with a student, its KL and the
    capacity gap (the student's KL minus the context gap), per example, equal to one daemon's."""
    one = single.call("distill/score", {"teacher": {"model": "full"},
                                        "students": {"contextGap": {"model": "full"}, "student": {"model": "short"}},
                                        "dataset": "pairs", "loss": {"name": "forward_kl"}})
    d = diagnose_sharded("full", models["path"], student="short", shards=3, workers=pool, models=models["models"],
                         datasets=models["datasets"])
    gap, student = one["students"]
    assert bits(d["contextGap"]) == bits(gap["loss"]) and bits(d["studentKL"]) == bits(student["loss"])
    assert d["capacityGap"] == student["loss"] - gap["loss"] and d["contextGap"] > 0
    assert [e["id"] for e in d["examples"]] == [e["id"] for e in gap["perExample"]]
    for e, g, s in zip(d["examples"], gap["perExample"], student["perExample"]):
        assert bits(e["contextGap"]) == bits(g["loss"]) and e["capacityGap"] == s["loss"] - g["loss"]


def test_export_writes_a_shard_per_range_and_an_index(pool, single, models, tmp_path):
    whole = str(tmp_path / "whole.safetensors")
    single.call("teacher/export", {"model": "full", "dataset": "pairs", "path": whole, "k": 5})
    index = export_sharded("full", models["path"], str(tmp_path / "out"), shards=3, k=5, workers=pool,
                           models=models["models"], datasets=models["datasets"])
    on_disk = json.load(open(tmp_path / "out" / "index.json"))
    assert {k: v for k, v in index.items() if k not in ("index", "bytesMoved")} == on_disk
    assert on_disk["examples"] == 30 and [s["range"] for s in on_disk["shards"]] == [
        {"start": 0, "count": 10}, {"start": 10, "count": 10}, {"start": 20, "count": 10}]
    w = load_file(whole)
    for s in on_disk["shards"]:
        path = str(tmp_path / "out" / s["path"])
        part = load_file(path)
        lo, n, t = s["range"]["start"], s["examples"], s["positions"]
        assert s["bytes"] == os.path.getsize(path) and s["targetTokens"] == int(part["mask"].sum())
        # Each shard's rows are the whole export's rows of its range (positions up to the shard's longest target).
        for name in ("topk_logprobs", "topk_indices", "mask", "tail_mass", "targets"):
            assert np.array_equal(part[name], w[name][lo:lo + n, :t]), name
        assert not w["mask"][lo:lo + n, t:].any()
        info = single.call("teacher/load", {"name": "part", "path": path, "replace": True})
        assert info["layout"] == "topk" and info["examples"] == n
    assert on_disk["targetTokens"] == int(w["mask"].sum())
    with pytest.raises(FileExistsError):
        export_sharded("full", models["path"], str(tmp_path / "out"), shards=3, k=5, workers=pool,
                       models=models["models"], datasets=models["datasets"])


def test_the_readme_example_runs_on_the_builtin_files(pool, single):
    """README "Beyond one machine": the builtin demo teacher split in 3 ranges, as one request gives it."""
    students = {"A": "builtin:demo-student-A", "B": "builtin:demo-student-B"}
    one = single.call("distill/score", {"teacher": {"path": "builtin:demo"},
                                        "students": {k: {"path": v} for k, v in students.items()},
                                        "loss": {"name": "forward_kl", "reduction": "mean"}})
    seen = []
    r = score_sharded("builtin:demo", students, None, {"name": "forward_kl", "reduction": "mean"}, shards=3,
                      workers=pool, progress=seen.append)
    assert_same(r, one)
    assert r["best"] == "A" and [s["range"] for s in r["shards"]] == [
        {"start": 0, "count": 2}, {"start": 2, "count": 2}, {"start": 4, "count": 2}]
    assert seen[0]["kind"] == "begin" and seen[-1]["kind"] == "end" and seen[-1]["message"] == "done"
    assert [v["percentage"] for v in seen] == sorted(v["percentage"] for v in seen)
