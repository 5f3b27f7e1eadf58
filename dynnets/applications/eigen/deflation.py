"""A robust Yi-ODE eigen-solver: deflation on the orthogonal complement, residual stopping, best steps.

For k = 1..n, on the orthogonal complement of the vectors found so far (B_k = Q_k^T A Q_k, kept by
Householder reflections), run the Yi ODE for B_k (``flow``) until ||B_k y - rho(y) y|| <= threshold =
tol ||A||_F, then lift v_k = Q_k y (``order="alternating"``: every second level runs -B_k). A level still
above the threshold after PATIENCE steps (a cluster) is resolved as a block (``clusters``) and deflated
whole. More than ``max_steps`` steps per pair is a ``ConvergenceError`` naming the pairs. Each later level
at the same end starts from the previous level's residual direction g = B y - rho y (dominated by the next
eigenvector). Algorithm and figures: docs/eigen.md.

What is guaranteed. Each accepted pair has ||B_k y - rho y|| <= threshold in its deflated space. In A, the
residual of v_k also has components along the earlier vectors: v_i^T A v_k = the component along v_k of the
residual of v_i (i < k), and those of one v_i sum in squares to at most threshold^2; so
||A v_k - rho_k v_k||^2 <= k threshold^2, i.e. ||A v - rho v|| <= sqrt(n) tol ||A||_F for every pair. With
V^T A V = diag(rho) + E, ||E||_F^2 <= 2 n threshold^2, Weyl's theorem bounds each sorted eigenvalue's error
by sqrt(2 n) tol ||A||_F (far less when the gaps are larger than the residuals: residual^2 / gap).
Orthonormality holds to round-off (Householder reflections).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ...checks import check_int, real
from ...errors import ConfigError
from ...systems.yi import YiField, spread_bound
from .clusters import resolve_block
from .flow import run_closed_form, run_method
from .result import EigenResult, finish

__all__ = ["PATIENCE", "STEP_FACTOR", "robust_eig"]

#: the fixed step of a generic method: h = STEP_FACTOR / spread_bound(B_k) (< 1.72: monotone)
STEP_FACTOR = 1.5
#: steps of one run of the flow before its vector is resolved together with its neighbours (``clusters``)
PATIENCE = 250


def _deflate(b: np.ndarray, q: np.ndarray, found: np.ndarray, carried: np.ndarray):
    """Remove the orthonormal columns y of ``found`` one by one: B -> (H B H)[1:, 1:], Q -> (Q H)[:, 1:],
    ``carried`` -> (H carried)[1:], H = I - 2 u u^T the Householder map of y to -sign(y_0) ||y|| e_1."""
    for _ in range(found.shape[1]):
        y, u = found[:, 0], found[:, 0].copy()
        u[0] += np.copysign(np.linalg.norm(y), y[0] if y[0] != 0 else 1.0)
        u = u / np.linalg.norm(u)
        hb = b - 2.0 * np.outer(u, u @ b)
        hb = hb - 2.0 * np.outer(hb @ u, u)
        b = (hb[1:, 1:] + hb[1:, 1:].T) / 2
        q = (q - 2.0 * np.outer(q @ u, u))[:, 1:]
        found = (found - 2.0 * np.outer(u, u @ found))[1:, 1:]
        carried = (carried - 2.0 * np.outer(u, u @ carried))[1:]
    return b, q, carried


class _Levels:
    """The level loop on one symmetric matrix; Rayleigh-Ritz blocks call it again on their compression."""

    def __init__(self, method, order: str, max_steps: int, step_factor: float | None, rng, device):
        self.method, self.order, self.max_steps = method, order, max_steps
        self.step_factor, self.rng, self.device = step_factor, rng, device
        self.blocks: list[int] = []  # sizes of the blocks (> 1) resolved by Rayleigh-Ritz, inner ones too

    def run(self, b, y: np.ndarray, threshold: float):
        """One flow of at most min(PATIENCE, max_steps) steps on b (a matrix or a ``Compression``) from y."""
        budget = min(PATIENCE, self.max_steps)
        if self.method is None and self.step_factor is None:
            return run_closed_form(b, y, threshold, budget)
        b = np.asarray(b)
        h = (STEP_FACTOR if self.step_factor is None else self.step_factor) / spread_bound(torch.from_numpy(b))
        if self.method is None:
            return run_closed_form(b, y, threshold, budget, h)
        return run_method(self.method, b, y, threshold, budget, h, self.device)

    def solve(self, a: np.ndarray, threshold: float, steps: list) -> np.ndarray:
        """Orthonormal eigenvectors (columns, in the order found) of the symmetric ``a``, each with residual
        <= threshold in its deflated space; ``steps`` collects the steps per pair."""
        n = a.shape[0]
        b, q, columns = a.copy(), np.eye(n), []
        starts = np.zeros((n, 2))  # warm starts for the top (column 0) and the bottom (column 1) end
        while b.shape[0]:
            m, sign = b.shape[0], -1.0 if (self.order == "alternating" and len(columns) % 2 == 1) else 1.0
            end = 0 if sign > 0 else 1
            if m == 1 or spread_bound(torch.from_numpy(b)) == 0.0:  # every vector is an eigenvector
                found, used, g = np.eye(m)[:, :1], 0, np.zeros(m)
            else:
                found, used, g = self._level(sign * b, starts[:, end], threshold, len(columns) + 1, n)
            columns.append(q @ found)
            steps.extend([used] + [0] * (found.shape[1] - 1))
            starts[:, end] = g
            b, q, starts = _deflate(b, q, found, starts)
        return np.hstack(columns)

    def _level(self, b: np.ndarray, start: np.ndarray, threshold: float, pair: int, n: int):
        """(found vectors as columns, steps, warm start for the next level at this end)."""
        if not np.linalg.norm(start) > 0.0:
            start = self.rng.standard_normal(b.shape[0])
        flow = self.run(b, start, threshold)
        if flow.residual <= threshold:
            return flow.y[:, None], flow.steps, flow.g
        inner: list = []  # the steps of the Rayleigh-Ritz solves on the block
        block, used = resolve_block(self.run, lambda c, t: self.solve(c, t, inner), b, flow.y, threshold,
                                    steps=flow.steps, budget=self.max_steps, first_pair=pair, n=n)
        if block.shape[1] > 1:
            self.blocks.append(block.shape[1])
        return block, used + sum(inner), np.zeros(b.shape[0])


def robust_eig(field: YiField, *, method=None, tol: float = 1e-10, order: str = "descending",
               max_steps: int = 200_000, step_factor: float | None = None,
               rng: np.random.Generator, device=None) -> EigenResult:
    """All eigenpairs of field.A (module docstring). ``step_factor``: None for the best Cayley step or
    STEP_FACTOR / spread_bound (a ``method``), or c in (0, 1.72): the monotone h = c / spread_bound(B_k)."""
    if order not in ("descending", "alternating"):
        raise ConfigError(f"order must be 'descending' or 'alternating', got {order!r}")
    max_steps = check_int("max_steps", max_steps, minimum=1)
    if step_factor is not None:
        real("step_factor", step_factor, positive=True, below=1.72)
    if method is not None:
        method.check(field)
    a = field.A.detach().cpu().numpy()
    # yi_eig scales A to max |A_ij| in [1/2, 1): the norm neither overflows nor underflows
    threshold = tol * max(float(np.linalg.norm(a)), np.finfo(float).tiny)
    steps: list = []
    t0 = time.perf_counter()
    levels = _Levels(method, order, max_steps, step_factor, rng, device)
    vectors = levels.solve(a, threshold, steps)
    seconds = time.perf_counter() - t0
    return finish(a, list(vectors.T), "robust", seconds, steps, device,
                  info={"tol": tol, "order": order, "max_steps": max_steps, "step_factor": step_factor,
                        "blocks": levels.blocks,
                        "method": "Cayley (closed form, best step)" if method is None and step_factor is None
                        else "Cayley (closed form)" if method is None else repr(method)})
