"""Pairs the Yi flow resolves only slowly, taken together: an invariant subspace, then Rayleigh-Ritz on it.

The flow's error along v_j contracts by about 1 - 2 (rho - lambda_j) / spread per step, so a pair whose
eigenvalue lies within a tiny gap of the next one (a cluster: eigenvalues 1, 1 + 1e-6, ...) would need
~spread / gap steps. Its flow does reach the cluster's invariant subspace E quickly (the rate is the gap
between the cluster and the rest); only the rotation inside E is slow. So when a run of ``budget`` steps
leaves the residual above the threshold, the vector starts a block Y (orthonormal columns) that is grown and
refined by the same flow until span(Y) is invariant:

- refine (a sweep): each column runs the flow on the compression P_j B P_j to the complement of the other
  columns (its residual there is column j of B Y - Y (Y^T B Y): only the part of B y_j outside span(Y),
  which the rotation inside span(Y) does not affect);
- grow, when a sweep no longer cuts ||B Y - Y C||_F by CUT = 100: one more column, from the largest
  residual column, run by the flow on the compression to the complement of Y (it lands in the part of E
  still missing, or below it); a full block (MAX_BLOCK columns, or all but one of the remaining dimension:
  the whole space would be the same problem again) is refined while a sweep still cuts by 10%;
- done when ||B Y - Y C||_F <= threshold / 2, C = Y^T B Y: then span(Y) is invariant to that residual, and
  for any unit eigenvector z of C with residual ||C z - theta z|| <= threshold / 2, Y z is an eigenvector
  of B with ||B Y z - theta Y z|| <= ||B Y - Y C||_2 + ||C z - theta z|| <= threshold.

The eigenpairs of C come from the same solver (``solve``, passed in: recursion). The problem is scale
invariant, and C - tr(C)/d I has the cluster's width as its spread, so inside a block the relative gaps are
of order 1 / d and the flow converges in a few hundred steps; a sub-cluster is a block again. A multiple
eigenvalue needs none of this (every vector of its eigenspace is an eigenvector: the flow converges to one,
deflation takes it, the next converges to another), and neither does a cluster narrower than the threshold
(its vectors pass the residual test); what is returned for either is some orthonormal basis of the
eigenspace. ``ConvergenceError`` when a block takes more than ``max_steps`` steps per column, or is full and
a sweep no longer improves it.
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
    """The operator v -> P B P v + floor Z Z^T v with P = I - Z Z^T (Z orthonormal columns), applied as
    ``compression @ v`` in O(m^2 + m d) without forming the m x m matrix; ``np.asarray`` forms it (for a
    generic method's YiField). On span(Z) it is floor (a lower bound of B's spectrum), so round-off along
    Z, which the flow toward the top of the complement never removes, is not amplified either."""

    def __init__(self, b: np.ndarray, basis: np.ndarray, floor: float):
        self.b, self.z, self.floor = b, basis, floor
        self.shape = b.shape

    def __matmul__(self, v: np.ndarray) -> np.ndarray:
        along = self.z @ (self.z.T @ v)
        bw = self.b @ (v - along)
        return bw - self.z @ (self.z.T @ bw) + self.floor * along

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        pb = self @ np.eye(self.shape[0])
        return (pb + pb.T) / 2


def _lower_bound(b: np.ndarray) -> float:
    """A certified lower bound of B's eigenvalues (Gershgorin discs)."""
    d = np.diag(b)
    return float((d - (np.abs(b).sum(axis=1) - np.abs(d))).min())


def block_residual(b: np.ndarray, y: np.ndarray):
    """(C, R) with C = Y^T B Y (symmetrised) and R = B Y - Y C."""
    by = b @ y
    c = y.T @ by
    c = (c + c.T) / 2
    return c, by - y @ c


def _sweep(run, b, y, threshold, floor):
    """Each column once through the flow on the compression to the complement of the others; returns the
    re-orthonormalised block and the steps taken."""
    d, steps = y.shape[1], 0
    for j in range(d):
        flow = run(Compression(b, np.delete(y, j, axis=1), floor), y[:, j], threshold / (2 * math.sqrt(d)))
        y[:, j] = flow.y
        steps += flow.steps
    return np.linalg.qr(y)[0], steps


def _grow(run, b, y, r, threshold, floor):
    """Y with one more column: the flow on the compression to the complement of Y, started from the
    largest column of the block residual R (which lies in that complement)."""
    start = r[:, int(np.argmax(np.linalg.norm(r, axis=0)))]
    flow = run(Compression(b, y, floor), start - y @ (y.T @ start), threshold)
    new = flow.y - y @ (y.T @ flow.y)
    return np.hstack([y, (new / np.linalg.norm(new))[:, None]]), flow.steps


def resolve_block(run, solve, b: np.ndarray, y: np.ndarray, threshold: float, *, steps: int, budget: int,
                  first_pair: int, n: int):
    """Grow and refine the block started by the unit vector ``y`` (module docstring) until it is an
    invariant subspace of ``b`` to threshold / 2; return (Ritz vectors as columns, steps taken in all).
    ``run(b, y, threshold)`` is one flow; ``solve(c, threshold)`` returns the orthonormal eigenvectors of a
    smaller symmetric matrix with residuals <= threshold. ``steps`` were spent before; more than ``budget``
    steps per column (``max_steps``), or a block that can neither grow nor improve, is a ConvergenceError."""
    y, last, floor = y.reshape(-1, 1).copy(), math.inf, _lower_bound(b)
    largest = min(MAX_BLOCK, b.shape[0] - 1)
    while True:
        c, r = block_residual(b, y)
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
            y, used = _sweep(run, b, y, threshold, floor)
        else:  # the block misses a slow direction: grow
            last = math.inf
            y, used = _grow(run, b, y, r, threshold, floor)
        steps += used
