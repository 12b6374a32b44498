"""The accepted temperature range, end to end: extreme values are refused on their own field
at once (they used to hang distill/explain for ever and made distill/score blame the teacher
with an internal message), the ends of the range match the float64 reference for every loss,
rows whose float32 exponents overflow fall back to float64, large scaled temperatures stay
within tolerance, and a long explanation is cancellable."""

import time
import zlib

import numpy as np
import pytest

import reference as R
from distilld import RPCError

LOSSES = ["forward_kl", "reverse_kl", "cross_entropy", "jsd", "generalized_jsd", "skew_kl",
          "skew_reverse_kl", "tvd", "prob_mse", "logit_mse"]
SEED_T = [[0.7, 0.2, 0.1]]
SEED_A = [[0.6, 0.3, 0.1]]
RANGE = "[1e-4, 1e4]"


def rows(seed, n, v, scale=3.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 1, v)) * scale).astype(np.float32)


def within_tolerance(got, ref):
    """The loss engine's documented bound: 1e-6 absolute or 1e-5 relative."""
    return abs(got - ref) <= 1e-6 or abs(got - ref) <= 1e-5 * abs(ref)


def score_params(loss):
    return {"teacher": {"probs": SEED_T}, "students": {"A": {"probs": SEED_A}}, "loss": loss}


def explain_params(**extra):
    return {"teacher": {"probs": SEED_T}, "students": {"A": {"probs": SEED_A}}, "charts": True, **extra}


REFUSED = [
    ("distill/score", score_params({"name": "forward_kl", "temperature": 1e-100}), "params.loss.temperature"),
    ("distill/score", score_params({"name": "forward_kl", "temperature": 1e300}), "params.loss.temperature"),
    ("distill/score", score_params({"name": "jsd", "temperature": 4.9e-324}), "params.loss.temperature"),
    ("distill/score", score_params({"name": "forward_kl", "teacherTemperature": 1e5}), "params.loss.teacherTemperature"),
    ("distill/score", score_params({"name": "forward_kl", "studentTemperature": 9.9e-5}),
     "params.loss.studentTemperature"),
    ("distill/explain", explain_params(temperatures=[1e300]), "params.temperatures[0]"),
    ("distill/explain", explain_params(temperatures=[1, 2, 4.9e-324]), "params.temperatures[2]"),
    ("distill/explain", explain_params(temperatures=[1e18]), "params.temperatures[0]"),
    ("distill/explain", explain_params(temperature=1e-323), "params.temperature"),
    ("distill/explain", explain_params(temperature=1.7976931348623157e308), "params.temperature"),
]


@pytest.mark.parametrize("method,params,field", REFUSED, ids=[f"{m}:{f}" for m, _, f in REFUSED])
def test_extreme_temperature_is_refused_on_its_field(client, method, params, field):
    started = time.monotonic()
    with pytest.raises(RPCError) as e:
        client.call(method, params, timeout=10)
    assert time.monotonic() - started < 5
    assert e.value.code == -32602
    assert e.value.data["field"] == field
    assert e.value.message.startswith(field + ":")
    assert RANGE in e.value.message and "internal" not in e.value.message
    # The daemon goes on serving, and the same request inside the range is answered.
    assert client.call("distilld/ping", {"payload": "next"})["payload"] == "next"


def test_explain_sweep_limit(client):
    with pytest.raises(RPCError) as e:
        client.call("distill/explain", explain_params(temperatures=[1.0] * 257))
    assert e.value.code == -32602 and e.value.data["field"] == "params.temperatures"


@pytest.mark.parametrize("tau", [1e-4, 1e4])
@pytest.mark.parametrize("scaled", [False, True])
def test_the_ends_of_the_range_match_the_reference(client, tau, scaled):
    zt, zs = rows(11, 6, 1000), rows(12, 6, 1000)
    labels = np.random.default_rng(13).integers(0, 1000, size=(6, 1))
    for name in LOSSES + ["combined"]:
        loss = {"name": name, "temperature": tau, "scaleBySquaredTemperature": scaled}
        ref_cfg = {"name": name, "temperature": tau, "scale_by_squared_temperature": scaled}
        if name == "combined":
            loss["labels"] = labels.tolist()
        r = client.call("distill/score", {"teacher": {"logits": zt}, "students": {"s": {"logits": zs}}, "loss": loss})
        ref = float(R.loss(zt.astype(np.float64), zs.astype(np.float64), ref_cfg,
                           labels=labels if name == "combined" else None))
        got = r["students"][0]["loss"]
        assert within_tolerance(got, ref), (name, tau, scaled, got, ref)


@pytest.mark.parametrize("name", LOSSES[:-1])
def test_rows_whose_exponents_overflow_float_are_computed_in_double(client, name):
    """Logits near 1e6 at tau = 1e-4 put |x|/tau near 1e10: rounding x*log2(e)/tau alone
    then exceeds float's exponent range and the fused kernel's sums overflow. Such a row
    used to be refused as 'internal: loss is NaN for finite inputs', naming the teacher."""
    zt, zs = rows(21, 4, 257, scale=3e5), rows(22, 4, 257, scale=3e5)
    zs[1, 0, :] = zt[1, 0, :] + np.float32(0.5)  # equal up to a shift: KL = 0 exactly
    for tau in (1e-4, 3e-4):
        loss = {"name": name, "temperature": tau}
        r = client.call("distill/score", {"teacher": {"logits": zt}, "students": {"s": {"logits": zs}}, "loss": loss})
        ref = float(R.loss(zt.astype(np.float64), zs.astype(np.float64), {"name": name, "temperature": tau}))
        got = r["students"][0]["loss"]
        assert np.isfinite(got) and within_tolerance(got, ref), (name, tau, got, ref)


@pytest.mark.parametrize("tau", [20.0, 100.0, 1000.0])
def test_scaled_losses_at_large_temperatures_stay_within_tolerance(client, tau):
    """tau^2 * KL at large tau: KL is O(1/tau^2) and float32 partial sums leave about 1e-7
    absolute error, 24x the tolerance at tau = 100; such rows are computed in float64."""
    v = 5003
    zt, zs = rows(zlib.crc32(b"large-tau"), 4, v), rows(zlib.crc32(b"large-tau-s"), 4, v)
    for name in LOSSES:
        loss = {"name": name, "temperature": tau, "scaleBySquaredTemperature": True}
        r = client.call("distill/score", {"teacher": {"logits": zt}, "students": {"s": {"logits": zs}}, "loss": loss})
        ref = float(R.loss(zt.astype(np.float64), zs.astype(np.float64),
                           {"name": name, "temperature": tau, "scale_by_squared_temperature": True}))
        got = r["students"][0]["loss"]
        assert within_tolerance(got, ref), (name, tau, got, ref)


def test_explain_sweeps_the_whole_range(client):
    temps = [1e-4, 1e-2, 1.0, 1e2, 1e4]
    zt, zs = rows(31, 1, 50)[0], rows(32, 1, 50)[0]
    r = client.call("distill/explain", {"teacher": {"logits": zt[None]}, "students": {"A": {"logits": zs[None]}},
                                        "temperatures": temps, "temperature": 1e4, "charts": True})
    sweep = r["students"][0]["temperature"]["sweep"]
    for point, tau in zip(sweep, temps):
        lp = R.log_dist(zt.astype(np.float64), "logits", tau)
        lq = R.log_dist(zs.astype(np.float64), "logits", tau)
        ref = tau * tau * float(R.kl(lp, lq)[0])
        assert point["temperature"] == tau
        assert point["scaledKl"] == pytest.approx(ref, rel=1e-6, abs=1e-9)
    assert "<svg" in r["charts"]["temperature"]
    assert "infinity" not in r["students"][0]["temperature"]["text"]


def test_a_long_explanation_is_cancelled(client):
    """Every row of every student, with a 256-point sweep over a wide vocabulary: seconds of
    work that a cancel must stop (the sweep loop polls the token)."""
    zt, zs = rows(41, 64, 32000), rows(42, 64, 32000)
    temps = list(np.geomspace(1e-2, 1e2, 256))
    fut = client.call_async("distill/explain", {"teacher": {"logits": zt}, "students": {"A": {"logits": zs}},
                                                "temperatures": temps, "charts": False})
    time.sleep(0.5)
    cancelled_at = time.monotonic()
    client.cancel(fut)
    with pytest.raises(RPCError) as e:
        fut.result(60)
    assert e.value.code == -32800
    assert time.monotonic() - cancelled_at < 10
    assert client.call("distilld/ping", {"payload": "after"})["payload"] == "after"
