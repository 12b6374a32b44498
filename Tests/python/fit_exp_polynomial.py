#!/usr/bin/env python3
"""Fits the polynomials of distilld's float32 exp kernels (Sources/DistillMath/Kernels/VectorMath.swift).

`vexpNonPositive`: e^r ≈ 1 + r + c2·r² + c3·r³ + c4·r⁴ + c5·r⁵ on |r| ≤ ln2/2, minimising the largest
relative error with the first two coefficients fixed at 1 (so e^0 = 1 exactly).
`vexp2NonPositive` (the fused KL pass works in base 2): 2^f ≈ 1 + d1·f + … + d5·f⁵ on |f| ≤ 1/2, with only
the constant fixed at 1. Lawson's iteratively reweighted least squares
on Chebyshev nodes converges to the minimax (equioscillating) fit. Prints the float32 coefficients and the
relative error they reach; the kernel's measured error (VectorMathTests) adds float32 evaluation rounding.

usage: python3 Tests/python/fit_exp_polynomial.py
"""
import numpy as np


def lawson(a, b, iterations):
    """Minimax solution of a·c ≈ b over the rows (nodes): Lawson's iteratively reweighted least
    squares. Returns the coefficients rounded to float32 and the largest |a·c − b| they leave."""
    w = np.full(len(b), 1 / len(b))
    for _ in range(iterations):
        sw = np.sqrt(w)
        c, *_ = np.linalg.lstsq(a * sw[:, None], b * sw, rcond=None)
        e = np.abs(a @ c - b)
        w = w * e
        w /= w.sum()
    c32 = c.astype(np.float32)
    return c32, float(np.abs(a @ c32.astype(np.float64) - b).max())


def fit(degree=5, nodes=20001, iterations=3000):
    h = np.log(2) / 2
    r = np.cos(np.linspace(0, np.pi, nodes)) * h
    f = np.exp(r)
    a = np.stack([r ** k for k in range(2, degree + 1)], 1) / f[:, None]
    b = (f - 1 - r) / f
    return lawson(a, b, iterations)


def fit_base2(degree=5, nodes=20001, iterations=3000):
    f = np.cos(np.linspace(0, np.pi, nodes)) * 0.5
    y = np.exp2(f)
    a = np.stack([f ** k for k in range(1, degree + 1)], 1) / y[:, None]
    b = (y - 1) / y
    return lawson(a, b, iterations)


if __name__ == "__main__":
    coeffs, err = fit()
    for k, c in enumerate(coeffs, start=2):
        print(f"c{k} = {float(c)!r}")
    print(f"max relative error (float32 coefficients, exact arithmetic): {err:.3e}")
    coeffs, err = fit_base2()
    for k, c in enumerate(coeffs, start=1):
        print(f"d{k} = {float(c)!r}")
    print(f"base 2: max relative error (float32 coefficients, exact arithmetic): {err:.3e}")
