"""The soak (issue #10): 32 socket clients for DISTILLD_SOAK_SECONDS (default 20) mixing loads,
unloads, scores, diagnoses, cancellations, FIFO loads and disconnects, with a 33rd process
pinging. One run (soak.py) feeds every test here; each test asserts one property of it."""

import json
import os
import time

import numpy as np
import pytest

import soak
from catalogue_daemon import CatalogueDaemon

# The ping target is for a machine that is not overloaded; on a shared builder the figure is
# still printed, and DISTILLD_SOAK_P99_MS can loosen it.

P99_MS = float(os.environ.get("DISTILLD_SOAK_P99_MS", 50))
RSS_GROWTH_KIB = 32 * 1024


@pytest.fixture(scope="module")
def figures(distilld, tmp_path_factory):
    f = soak.run(distilld, soak.soak_seconds(), str(tmp_path_factory.mktemp("soak")))
    shown = {k: v for k, v in f.items() if k not in ("rssKiB", "expected", "uncertain", "listed", "saved", "reloaded")}
    shown["rssGrowthKiB"] = soak.rss_growth_kib(f["rssKiB"])
    print("\nsoak figures:", json.dumps(shown))
    return f


def test_every_request_is_answered_once(figures):
    assert figures["problems"] == []
    assert figures["answered"] == figures["requests"]
    # The mix really ran: every kind of operation happened.
    assert all(n > 0 for n in figures["ops"].values()), figures["ops"]


def test_ping_stays_fast_under_load(figures):
    # FIFO loads are refused at once now (test_fifo_loads_are_refused_at_once); a blocked one
    # would be a regression, and it fails there rather than excusing a slow ping here.
    before, _ = figures["loadAverage"]
    if before > figures["cores"]:
        # The target is for a machine that is not overloaded: other work already kept more than
        # every core busy when the soak began. The figures are still printed above.
        pytest.xfail(f"machine overloaded before the soak (load average {before} on {figures['cores']} cores); "
                     f"ping p50 {figures['pingP50Ms']:.1f} ms, p99 {figures['pingP99Ms']:.0f} ms")
    assert figures["pings"] >= 10 * figures["seconds"], figures["pings"]
    assert figures["pingP99Ms"] < P99_MS, (figures["pingP50Ms"], figures["pingP99Ms"], figures["pingMaxMs"])


def test_no_acknowledged_load_is_lost(figures):
    expected, uncertain = set(figures["expected"]), set(figures["uncertain"])
    for where in ("listed", "saved", "reloaded"):
        got = set(figures[where])
        assert expected <= got, (where, sorted(expected - got))
        assert got <= expected | uncertain, (where, sorted(got - expected - uncertain))


def test_memory_is_flat_after_warm_up(figures):
    growth = soak.rss_growth_kib(figures["rssKiB"])
    assert growth < RSS_GROWTH_KIB, (growth, figures["rssStartKiB"], figures["rssEndKiB"])
    # Every JSON value a request made is freed once the clients are gone.
    start, end = figures["jsonLiveValues"]
    assert end <= start + 16, figures["jsonLiveValues"]


def test_fifo_loads_are_refused_at_once(figures):
    assert figures["fifoLoads"] > 0
    assert figures["fifoBlocked"] == 0, figures["fifoBlocked"]
    assert figures["fifoMaxSeconds"] < 1.0


def test_ping_is_not_queued_behind_analyses(distilld, tmp_path):
    d = str(tmp_path)
    rng = np.random.default_rng(1)
    a = rng.standard_normal((256, 4, 16000)).astype(np.float32)
    np.save(os.path.join(d, "t.npy"), a)
    np.save(os.path.join(d, "s.npy"), a * 1.1)
    dm = CatalogueDaemon(distilld, d)
    try:
        assert "result" in dm.call("teacher/load", {"name": "t", "path": os.path.join(d, "t.npy")})
        heavy = {"teacher": "t", "students": {"a": {"path": os.path.join(d, "s.npy")}, "b": {"path": os.path.join(d, "s.npy")}},
                 "loss": {"name": "jsd"}, "conventions": ["pytorch_kldiv_batchmean", "hinton", "pytorch_kldiv_mean"]}
        t0 = time.perf_counter()
        assert "result" in dm.call("distill/score", heavy)
        alone = time.perf_counter() - t0
        busy = [dm.connect(timeout=120) for _ in range(4)]
        for c in busy:
            c.send_obj({"jsonrpc": "2.0", "id": 1, "method": "distill/score", "params": heavy})
        time.sleep(0.05)
        t0 = time.perf_counter()
        assert dm.call("distilld/ping", {"payload": 1})["result"]["payload"] == 1
        waited = time.perf_counter() - t0
        for c in busy:
            assert "result" in c.read_line()
            c.close()
        # A ping costs microseconds; 100 ms leaves room for a loaded machine but not for a queue.
        assert waited < 0.1, f"ping waited {waited * 1000:.0f} ms behind analyses that take {alone * 1000:.0f} ms alone"
    finally:
        dm.stop()
