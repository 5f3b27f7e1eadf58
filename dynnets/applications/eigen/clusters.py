"""Pairs the Yi flow resolves only slowly, taken together: an invariant subspace, then Rayleigh-Ritz on it.

The flow reaches a cluster's invariant subspace quickly, only the rotation inside is slow: a vector still
above the threshold starts a block Y (orthonormal columns), grown and refined by the same flow. A sweep
refines it (each column runs the flow on the compression to the complement of the others); when a sweep no
longer cuts ||B Y - Y C||_F by CUT, Y grows by one column (the flow on the compression to the complement of
Y, from the largest residual column); a full block (MAX_BLOCK, or all but one dimension) is refined while a
sweep still cuts by 10%. Done when ||B Y - Y C||_F <= threshold / 2, C = Y^T B Y: for a unit eigenvector z
of C with ||C z - theta z|| <= threshold / 2, ||B Y z - theta Y z|| <= threshold. The eigenpairs of C come
from the same solver (``solve``, passed in: recursion). ``ConvergenceError`` when a block takes more than
``max_steps`` steps per column, or is full and a sweep no longer improves it.
"""

from __future__ import annotations

import math

import numpy as np

from .result import ConvergenceError

__all__ = ["MAX_BLOCK", "Compression", "resolve_block"]

#: the largest block (cluster) resolved by Rayleigh-Ritz
MAX_BLOCK = 32
#: a sweep that cuts ||B Y - Y C||_F by less than this factor makes the block grow
CUT = 100.0


class Compression:
    """v -> P B P v + floor Z Z^T v, P = I - Z Z^T (Z orthonormal columns), as ``compression @ v`` without
    forming the matrix (``np.asarray`` forms it); floor, a lower bound of B's spectrum, keeps round-off
    along Z from being amplified."""

    def __init__(self, b: np.ndarray, basis: np.ndarray, floor: float):
        self.b, self.z, self.floor = b, basis, floor

    def __matmul__(self, v: np.ndarray) -> np.ndarray:
        along = self.z @ (self.z.T @ v)
        bw = self.b @ (v - along)
        return bw - self.z @ (self.z.T @ bw) + self.floor * along

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        pb = self @ np.eye(self.b.shape[0])
        return (pb + pb.T) / 2


def resolve_block(run, solve, b: np.ndarray, y: np.ndarray, threshold: float, *, steps: int, budget: int,
                  first_pair: int, n: int):
    """(Ritz vectors as columns, steps in all) of the block started by the unit ``y``, grown and refined into
    an invariant subspace of ``b`` to threshold / 2 by ``run(b, y, threshold)`` (one flow) and ``solve(c,
    threshold)`` (eigenvectors of a smaller matrix); ``steps`` spent before, ``budget`` per column."""
    diag = np.diag(b)
    floor = float((diag - (np.abs(b).sum(axis=1) - np.abs(diag))).min())  # <= B's eigenvalues (Gershgorin)
    y, last = y.reshape(-1, 1).copy(), math.inf
    largest = min(MAX_BLOCK, b.shape[0] - 1)
    while True:
        by = b @ y
        c = y.T @ by
        c = (c + c.T) / 2  # C = Y^T B Y (symmetrised), R = B Y - Y C
        r = by - y @ c
        residual, d = float(np.linalg.norm(r)), y.shape[1]
        if residual <= threshold / 2:
            return y @ solve(c - np.trace(c) / d * np.eye(d), threshold / 2), steps
        if steps > budget * d or (d == largest and residual > 0.9 * last):
            why = f"more than max_steps={budget} steps per pair" if steps > budget * d else "no progress"
            pairs = f"pair {first_pair}" if d == 1 else f"pairs {first_pair}..{first_pair + d - 1}"
            raise ConvergenceError(
                f"{pairs}/{n}: the span of {d} vector(s) is not an invariant subspace to tol "
                f"(||B Y - Y C||_F = {residual:.3e} > {threshold / 2:.3e}) after {steps} steps "
                f"({why}; blocks grow to at most {largest}); eigenvalue gaps that small around a cluster that "
                "wide need a larger max_steps or tol")
        if residual <= last / CUT or d == largest:  # the last sweep helped (or the block is full): refine
            last = residual
            for j in range(d):
                flow = run(Compression(b, np.delete(y, j, axis=1), floor), y[:, j],
                           threshold / (2 * math.sqrt(d)))
                y[:, j] = flow.y
                steps += flow.steps
            y = np.linalg.qr(y)[0]
        else:  # the block misses a slow direction: grow from the largest column of R (in Y's complement)
            last = math.inf
            start = r[:, int(np.argmax(np.linalg.norm(r, axis=0)))]
            flow = run(Compression(b, y, floor), start - y @ (y.T @ start), threshold)
            new = flow.y - y @ (y.T @ flow.y)
            y = np.hstack([y, (new / np.linalg.norm(new))[:, None]])
            steps += flow.steps
