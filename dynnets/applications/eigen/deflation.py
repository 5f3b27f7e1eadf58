"""A robust Yi-ODE eigen-solver: deflation on the orthogonal complement, residual stopping, large steps.

For k = 1..n, on the orthogonal complement of the k - 1 vectors found so far (orthonormal basis Q_k,
deflated matrix B_k = Q_k^T A Q_k, kept by Householder reflections, so no component along a found
vector can ever regrow), integrate the Yi ODE y' = S(y) y for B_k from a random unit start until the
residual ||B_k y - rho(y) y|| <= tol * ||A||_F, then lift v_k = Q_k y. Theorem A: y converges to the top
eigenspace of B_k (``order="descending"``); with ``order="alternating"`` every second level integrates the
field of -B_k and takes the bottom one. A repeated eigenvalue needs nothing special: after deflation the
next start converges to another, orthogonal vector of the same eigenspace.

Time accuracy is not wanted, only the limit, so the step is the largest that keeps the scheme monotone:
h = c / spread_bound(B_k) with c = 1.5 (Gershgorin bound of lambda_max - lambda_min). For the Cayley step
with S frozen at y, the Rayleigh quotient then increases at every step: the step rotates y in the plane of
y and g = B y - rho y by theta = 2 atan(h ||y|| ||g|| / 2), and rho(theta) - rho = sin(theta) (2 ||g||
cos(theta) - (rho - mu) sin(theta)) > 0 when tan(theta) < 2 ||g|| / spread, which h spread < 1.72 ensures.
Near the limit each step contracts the error by about 1 - c gap / spread_bound.

The default method (``method=None``) is that Cayley step in closed form: S(y) = g y^T - y g^T has rank 2,
so (I - h/2 S)^{-1}(I + h/2 S) y = cos(theta) y + sin(theta) ||y|| g / ||g|| exactly, an O(n^2) step run on
NumPy float64 (per call ~2.5x cheaper than torch for such small vectors). Any ``dynnets.methods.Method``
(e.g. ``dn.methods.Cayley()`` or ``dn.methods.RK4()``) can be passed instead; it then runs through
``method.step(YiField(B_k), y, h)`` in torch, and a method that does not conserve ||y|| is followed by a
projection back to the unit sphere (the ODE's first integral) after each step.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from ...checks import check_int, positive_real, real
from ...errors import ConfigError
from ...structure import QuadraticInvariant
from ...systems.yi import YiField, spread_bound
from .result import ConvergenceError, EigenResult, finish

__all__ = ["STEP_FACTOR", "robust_eig"]

STEP_FACTOR = 1.5


def _householder(y: np.ndarray) -> np.ndarray:
    """Unit u with (I - 2 u u^T) y = -sign(y_0) ||y|| e_1."""
    u = y.copy()
    u[0] += math.copysign(np.linalg.norm(y), y[0] if y[0] != 0 else 1.0)
    return u / np.linalg.norm(u)


def _cayley_closed_form(b: np.ndarray, y: np.ndarray, h: float, threshold: float, max_steps: int):
    """Iterate the rank-2 closed-form Cayley step of y' = S(y) y until ||B y - rho y|| / ||y|| <= threshold."""
    for k in range(max_steps + 1):
        by = b @ y
        yy = y @ y
        rho = (y @ by) / yy
        g = by - rho * y
        gnorm = math.sqrt((g @ g) * yy)  # ||y|| ||g||: the rotation rate of S(y) in the plane (y, g)
        if gnorm <= threshold * yy:
            return y, k, gnorm / yy
        if k == max_steps:
            return y, k, gnorm / yy
        theta = 2.0 * math.atan(0.5 * h * gnorm)
        y = math.cos(theta) * y + (math.sin(theta) * yy / gnorm) * g
    raise AssertionError("unreachable")


def _generic(method, b: np.ndarray, y: np.ndarray, h: float, threshold: float, max_steps: int, device):
    field = YiField(torch.as_tensor(b)).to(device)
    x = torch.as_tensor(y, device=device).reshape(1, -1)
    keeps_norm = QuadraticInvariant.norm() in method.guarantees(field, h)
    with torch.no_grad():
        for k in range(max_steps + 1):
            res = float(field.residual(x))
            if res <= threshold or k == max_steps:
                return x.reshape(-1).cpu().numpy(), k, res
            x = method.step(field, x, h)
            if not keeps_norm:
                x = x / x.norm()
    raise AssertionError("unreachable")


def robust_eig(field: YiField, *, method=None, tol: float = 1e-10, order: str = "descending",
               max_steps: int = 200_000, step_factor: float = STEP_FACTOR, rng: np.random.Generator,
               device=None) -> EigenResult:
    if order not in ("descending", "alternating"):
        raise ConfigError(f"order must be 'descending' or 'alternating', got {order!r}")
    tol = positive_real("tol", tol)
    max_steps = check_int("max_steps", max_steps, minimum=1)
    if not (0 < real("step_factor", step_factor) < 1.72):
        raise ConfigError(f"step_factor must be in (0, 1.72) for a monotone Cayley step, got {step_factor!r}")
    if method is not None:
        method.check(field)
    a = field.A.detach().cpu().numpy()
    n = a.shape[0]
    # yi_eig scales A to max |A_ij| in [1/2, 1): the norm neither overflows nor underflows
    threshold = tol * max(float(np.linalg.norm(a)), np.finfo(float).tiny)
    b = a.copy()
    q = np.eye(n)
    found, steps, signs = [], [], []
    t0 = time.perf_counter()
    for level in range(n):
        m = b.shape[0]
        sign = -1.0 if (order == "alternating" and level % 2 == 1) else 1.0
        spread = spread_bound(torch.from_numpy(b))
        if m == 1 or spread == 0.0:  # 1-D complement, or B = c I: every vector is an eigenvector
            y, k = np.eye(m)[0], 0
        else:
            h = step_factor / spread
            y = rng.standard_normal(m)
            y /= np.linalg.norm(y)
            run = _cayley_closed_form if method is None else (
                lambda bb, yy, hh, th, ms: _generic(method, bb, yy, hh, th, ms, device))
            y, k, res = run(sign * b, y, h, threshold, max_steps)
            if res > threshold:
                raise ConvergenceError(
                    f"pair {level + 1}/{n}: residual {res:.3e} > tol * ||A||_F = {threshold:.3e} after "
                    f"max_steps={max_steps} steps (h={h:.3g}); eigenvalue gaps below about "
                    f"{spread / (step_factor * max_steps):.1e} need more steps or a larger tol")
            y = y / np.linalg.norm(y)
        found.append(q @ y)
        steps.append(k)
        signs.append(sign)
        if m > 1:
            u = _householder(y)
            hb = b - 2.0 * np.outer(u, u @ b)
            hb = hb - 2.0 * np.outer(hb @ u, u)
            b = hb[1:, 1:]
            b = (b + b.T) / 2
            q = (q - 2.0 * np.outer(q @ u, u))[:, 1:]
    seconds = time.perf_counter() - t0
    return finish(a, found, "robust", seconds, steps, device,
                  info={"tol": tol, "order": order, "step_factor": step_factor,
                        "method": "Cayley (closed form)" if method is None else repr(method)})
