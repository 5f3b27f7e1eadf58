"""The linear stability function of a Runge-Kutta tableau and its real stability interval.

Applied to y' = lambda y, a Runge-Kutta method (A, b) multiplies y by (Hairer, Wanner II, IV.3)

    R(z) = det(I - z A + z 1 b^T) / det(I - z A),     z = h lambda,

with det(I - z M) = sum_k (-1)^k e_k z^k from the traces p_i = tr(M^i) by Newton's identities
k e_k = sum_{i=1..k} (-1)^(i-1) e_(k-i) p_i (exact zeros for the nilpotent A of an explicit method).
"""

from __future__ import annotations

import math

import numpy as np


def _det_coefficients(m: np.ndarray) -> list[float]:
    """Ascending coefficients of det(I - z M) (Newton's identities, module docstring)."""
    s = m.shape[0]
    power = np.eye(s)
    traces = []
    for _ in range(s):
        power = power @ m
        traces.append(float(np.trace(power)))
    e = [1.0]
    for k in range(1, s + 1):
        e.append(math.fsum((-1) ** (i - 1) * e[k - i] * traces[i - 1] for i in range(1, k + 1)) / k)
    return [(-1) ** k * ek for k, ek in enumerate(e)]


def stability_function(a, b) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(numerator, denominator) of R(z), ascending coefficients, trailing zeros removed."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    num = _det_coefficients(a - np.ones((len(b), 1)) @ b[None, :])
    return tuple(_trim(num, 1e-14)), tuple(_trim(_det_coefficients(a), 1e-14))


def real_stability_interval(a, b) -> float:
    """The largest r with |R(-x)| <= 1 on [0, r] (inf for A-stable methods): |R| is probed just beyond each
    positive real root of P(-x) -+ Q(-x), in increasing order."""
    num, den = stability_function(a, b)
    size = max(len(num), len(den))
    signs = np.array([(-1.0) ** k for k in range(size)])
    p, q = (np.pad(np.asarray(v), (0, size - len(v))) * signs for v in (num, den))  # P(-x), Q(-x), ascending
    poly = np.polynomial.polynomial
    roots = [root for shift in (1.0, -1.0) for root in poly.polyroots(_trim(p - shift * q, 1e-13))]
    real = (float(r.real) for r in roots if abs(r.imag) <= 1e-9 * max(1.0, abs(r.real)) and r.real > 1e-12)
    for x in sorted(real):
        probe = x * (1 + 1e-7) + 1e-12
        qx = poly.polyval(probe, q)
        if qx == 0 or abs(float(poly.polyval(probe, p) / qx)) > 1.0:
            return x
    return float("inf")


def _trim(coeffs, rel: float):
    """``coeffs`` without the (numerically) vanishing highest-degree ones, |c| <= rel max |c| (one kept), so
    that polyroots sees the true degree."""
    top = max(max(abs(float(v)) for v in coeffs), 1e-300)
    end = len(coeffs)
    while end > 1 and abs(coeffs[end - 1]) <= rel * top:
        end -= 1
    return coeffs[:end]
