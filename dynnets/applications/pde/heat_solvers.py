"""Finite-difference solvers of the 1-D heat equation as dynnets flows.

    ftcs(field, dt, n)            = Flow.repeat(Step(field, Euler(), dt), n)        explicit, dt/dx^2 <= 1/2
    crank_nicolson(field, dt, n)  = Flow.repeat(Step(field, CrankNicolson(), dt), n) implicit, any dt
    solve_heat(field, u0, times, dt, method) -> {t: nodal values at t}

FTCS is second order in dx at a fixed ratio r = alpha dt/dx^2 (error O(dt + dx^2) = O(dx^2)); at
r = 1/6 its leading error terms cancel and it is fourth order in dx (Richtmyer-Morton, sec. 2.6).
"""

from __future__ import annotations

import math

import torch

from ...base import Method
from ...errors import ConfigError
from ...methods import CrankNicolson, Euler
from ...step import Flow, Step
from ...systems.heat import HeatField1D


def heat_flow(field: HeatField1D, method: Method, dt: float, n_steps: int) -> Flow:
    """n_steps weight-tied steps of ``method`` with step dt (an explicit method is checked against
    the field's stability limit when the Step is built)."""
    return Flow.repeat(Step(field, method, dt), n_steps)


def ftcs(field: HeatField1D, dt: float, n_steps: int) -> Flow:
    """Forward time, centred space: explicit Euler of the semi-discrete heat field."""
    return heat_flow(field, Euler(), dt, n_steps)


def crank_nicolson(field: HeatField1D, dt: float, n_steps: int) -> Flow:
    """Crank-Nicolson: the implicit trapezoidal rule of the semi-discrete heat field."""
    return heat_flow(field, CrankNicolson(), dt, n_steps)


def step_count(t: float, dt: float) -> int:
    """t/dt as an integer; refuses times that are not multiples of dt (to 1e-9 relative)."""
    ratio = float(t) / float(dt)
    n = round(ratio)
    if n < 0 or abs(ratio - n) > 1e-9 * max(1.0, ratio):
        raise ConfigError(
            f"time t={t} must be a non-negative multiple of the step dt={dt}, got t/dt = {ratio}"
        )
    return n


def solve_heat(field: HeatField1D, u0, times, dt: float, method: Method | None = None,
               dtype=torch.float64) -> dict[float, torch.Tensor]:
    """Nodal solutions (all n + 1 nodes) at each of ``times`` (multiples of dt), starting from ``u0``
    (callable or array, see ``UniformGrid1D.sample``) and stepping with ``method`` (default Euler =
    FTCS). The step size is validated once, before any stepping."""
    method = Euler() if method is None else method
    dt = float(dt)
    if not (math.isfinite(dt) and dt > 0):
        raise ConfigError(f"time step dt must be positive and finite, got dt={dt}")
    step = Step(field, method, dt)
    u = field.grid.sample(u0, dtype=dtype).unsqueeze(0)
    out: dict[float, torch.Tensor] = {}
    done = 0
    with torch.no_grad():
        for t in sorted(float(t) for t in times):
            n = step_count(t, dt)
            if n > done:
                u = Flow.repeat(step, n - done)(u)
                done = n
            out[t] = field.with_boundary(u)[0].clone()
    return out
