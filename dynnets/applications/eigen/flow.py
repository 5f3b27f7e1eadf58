"""One run of the Yi eigen-ODE y' = S(y) y, S(y) = B y y^T - y y^T B, to its limit: Cayley steps with S frozen
at y, stopped on the residual ||B y - rho(y) y|| (||y|| = 1) or after a budget of steps.

With g = B y - rho y, S(y) = g y^T - y g^T has rank 2 and the Cayley step is the rotation
cos(theta) y + sin(theta) g / ||g||, theta = 2 atan(h ||g|| / 2). On span(y, g) B is [[rho, ||g||], [||g||,
mu]], mu = g^T B g / ||g||^2, so rho is largest along the arc at tan(2 theta*) = 2 ||g|| / (rho - mu): the
best step h* = 2 tan(theta* / 2) / ||g|| (rho increases at every step, no spread bound needed). NumPy
float64; B y is carried along and recomputed every ``REFRESH`` steps and before a vector is accepted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ...structure import QuadraticInvariant
from ...systems.yi import YiField

__all__ = ["FlowResult", "run_closed_form", "run_method"]

#: steps between exact recomputations of B y (the carried product drifts by ~eps ||B|| per step)
REFRESH = 50


@dataclass
class FlowResult:
    """The last unit iterate y, the number of steps taken, its residual ||B y - rho y|| and the residual
    vector g = B y - rho y (the direction the next eigenvector dominates: a warm start)."""

    y: np.ndarray
    steps: int
    residual: float
    g: np.ndarray


def _residual(y: np.ndarray, by: np.ndarray):
    """(rho, g, ||g||) with g = B y - rho y made orthogonal to y once more (round-off)."""
    rho = float(y @ by)
    g = by - rho * y
    g -= (y @ g) * y
    return rho, g, math.sqrt(g @ g)


def run_closed_form(b: np.ndarray, y: np.ndarray, threshold: float, budget: int, h: float | None = None):
    """Cayley steps of y' = S(y) y on the symmetric ``b`` from ``y`` until ||B y - rho y|| <= threshold or
    ``budget`` steps, of the best size h* (module docstring) or of the given h (theta = 2 atan(h ||g||/2))."""
    for k in range(budget + 1):
        if k % REFRESH == 0:
            y = y / np.linalg.norm(y)
            by = b @ y
        rho, g, gamma = _residual(y, by)
        if gamma <= threshold or k == budget:
            by = b @ y  # decide on an exact product, not the carried one
            rho, g, gamma = _residual(y, by)
            if gamma <= threshold or k == budget:
                return FlowResult(y, k, gamma, g)
        unit = g / gamma
        b_unit = b @ unit
        theta = (0.5 * math.atan2(2.0 * gamma, rho - float(unit @ b_unit)) if h is None
                 else 2.0 * math.atan(0.5 * h * gamma))
        c, s = math.cos(theta), math.sin(theta)
        y, by = c * y + s * unit, c * by + s * b_unit


def run_method(method, b: np.ndarray, y: np.ndarray, threshold: float, budget: int, h: float, device):
    """The same run with any ``dynnets.methods.Method`` stepping ``YiField(b)`` (torch) with the fixed h;
    after each step of a method not conserving ||y||, y goes back to the unit sphere (the first integral)."""
    field = YiField(torch.as_tensor(b)).to(device)
    x = torch.as_tensor(y / np.linalg.norm(y), device=device).reshape(1, -1)
    keeps_norm = QuadraticInvariant.norm() in method.guarantees(field, h)
    with torch.no_grad():
        for k in range(budget + 1):
            res = float(field.residual(x))
            if res <= threshold or k == budget:
                out = x.reshape(-1).cpu().numpy()
                out = out / np.linalg.norm(out)
                return FlowResult(out, k, res, _residual(out, b @ out)[1])
            x = method.step(field, x, h)
            if not keeps_norm:
                x = x / x.norm()
