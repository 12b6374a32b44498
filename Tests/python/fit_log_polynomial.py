#!/usr/bin/env python3
"""Fits the polynomial of distilld's float32 log kernel (`vlogFinite`, Sources/DistillMath/Kernels/VectorMath.swift).

log(1 + f) ≈ f + f²·(q0 + q1·f + … + q7·f⁷) on f ∈ [√½ − 1, √2 − 1), the reduced argument left once the
exponent is taken out, minimising the largest error relative to log(1 + f) (so values near 1, where the
mixture losses' ratios sit, keep full relative precision). Lawson's iteratively reweighted least squares on
Chebyshev nodes converges to the minimax fit. Prints the float32 coefficients, the error they reach in exact
arithmetic, and the error of the float32 Horner evaluation the kernel performs.

usage: python3 Tests/python/fit_log_polynomial.py
"""
import numpy as np

from fit_exp_polynomial import lawson

LO, HI = np.sqrt(0.5) - 1, np.sqrt(2) - 1


def fit(degree=7, nodes=20001, iterations=2000):
    f = LO + (HI - LO) * (np.cos(np.linspace(0, np.pi, nodes)) + 1) / 2
    y = np.log1p(f)
    a = np.stack([f ** (k + 2) for k in range(degree + 1)], 1) / np.abs(y)[:, None]
    b = (y - f) / np.abs(y)
    return lawson(a, b, iterations)


def float32_error(c32):
    """Largest relative error of the kernel's float32 evaluation (FMA-rounded Horner, then f + f²·q)."""
    x = np.linspace(LO, HI, 2_000_001).astype(np.float32)
    q = np.full_like(x, c32[-1])
    for k in range(len(c32) - 2, -1, -1):
        q = (q.astype(np.float64) * x + c32[k]).astype(np.float32)
    z = (x.astype(np.float64) * x).astype(np.float32)
    r = (z.astype(np.float64) * q + x).astype(np.float32)
    t = np.log1p(x.astype(np.float64))
    nz = t != 0
    return float((np.abs(r[nz] - t[nz]) / np.abs(t[nz])).max())


if __name__ == "__main__":
    coeffs, err = fit()
    for k, c in enumerate(coeffs):
        print(f"q{k} = {float(c)!r}")
    print(f"max relative error (float32 coefficients, exact arithmetic): {err:.3e}")
    print(f"max relative error (float32 evaluation): {float32_error(coeffs):.3e}")
