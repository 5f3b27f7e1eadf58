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
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    ones = np.ones((len(b), 1))
    num = _det_coefficients(a - ones @ b[None, :])
    den = _det_coefficients(a)
    out = []
    for coeffs in (num, den):
        while len(coeffs) > 1 and abs(coeffs[-1]) <= 1e-14 * max(abs(v) for v in coeffs):
            coeffs.pop()
        out.append(tuple(coeffs))
    return out[0], out[1]


def real_stability_interval(a, b) -> float:
    """The largest r with |R(-x)| <= 1 on [0, r] (inf for A-stable methods): |R| is probed just beyond each
    positive real root of P(-x) -+ Q(-x), in increasing order."""
    num, den = stability_function(a, b)
    size = max(len(num), len(den))
    p = np.zeros(size)
    q = np.zeros(size)
    p[: len(num)] = num
    q[: len(den)] = den
    signs = np.array([(-1.0) ** k for k in range(size)])
    p, q = p * signs, q * signs  # P(-x), Q(-x), ascending in x

    def amp(x: float) -> float:
        qx = np.polynomial.polynomial.polyval(x, q)
        return abs(float(np.polynomial.polynomial.polyval(x, p) / qx)) if qx != 0 else float("inf")

    candidates = []
    for shift in (1.0, -1.0):
        for root in np.polynomial.polynomial.polyroots(_trim(p - shift * q)):
            if abs(root.imag) <= 1e-9 * max(1.0, abs(root.real)) and root.real > 1e-12:
                candidates.append(float(root.real))
    for x in sorted(candidates):
        if amp(x * (1 + 1e-7) + 1e-12) > 1.0:
            return x
    return float("inf")


def _trim(coeffs: np.ndarray) -> np.ndarray:
    """Drop (numerically) vanishing leading coefficients so that polyroots sees the true degree."""
    coeffs = np.asarray(coeffs, dtype=float)
    top = max(float(np.abs(coeffs).max()), 1e-300)
    end = len(coeffs)
    while end > 1 and abs(coeffs[end - 1]) <= 1e-13 * top:
        end -= 1
    return coeffs[:end]
