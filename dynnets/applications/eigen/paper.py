"""The seed's procedure, reproduced faithfully (Puleo et al. 2022, Sec. II.4 and III.2, Table I).

For i = 1..n: start x^(i)(0) (eq. 27 for i = 1 when given, else standard normal), Gram-Schmidt it against
v_1..v_{i-1} (eq. B1; a random start is then scaled to ``start_norm``, unit by default: the seed does not
say), integrate eq. (17) with forward Euler (eq. 21) on t in [0, t_f] with N steps, take v_i = x^(i)(t_f)
minus its components along v_1..v_{i-1} (eq. 30) and lambda_i = v_i^T A v_i / v_i^T v_i (eq. 20). Defaults:
t_f = 8, N = 2e5 (the seed's numbers).

The time loop runs on NumPy float64 arrays (a baseline must not be handicapped by torch's per-call cost);
its arithmetic is that of ``dn.Step(YiField(A), dn.methods.Euler(), h)`` (tests/applications/test_eigen.py).
"""

from __future__ import annotations

import time

import numpy as np
from tqdm import tqdm

from ...checks import check_int, positive_real
from ...errors import ConfigError
from ...methods import Euler
from ...systems.yi import YiField
from .result import EigenResult, finish

__all__ = ["paper_eig"]


def _euler_run(a: np.ndarray, x: np.ndarray, h: float, steps: int) -> np.ndarray:
    for _ in range(steps):
        ax = a @ x
        # eq. (21): x + h (-x + f(x)), f(x) = [x^T x A + (1 - x^T A x) I] x, written as in the seed
        x = x + h * (-x + (x @ x) * ax + (1.0 - x @ ax) * x)
    return x


def paper_eig(field: YiField, *, x0=None, t_final: float = 8.0, steps: int = 200_000,
              rng: np.random.Generator, progress: bool = False, start_norm: float | None = 1.0,
              device=None) -> EigenResult:
    steps = check_int("steps", steps, minimum=1)
    t_final = positive_real("t_final", t_final)
    if start_norm is not None:
        start_norm = positive_real("start_norm", start_norm)
    a = field.A.detach().cpu().numpy()
    n = a.shape[0]
    h = float(t_final) / steps
    if x0 is not None:
        x0 = np.asarray(x0.detach().cpu() if hasattr(x0, "detach") else x0, dtype=np.float64).reshape(-1)
        if x0.shape != (n,) or not np.all(np.isfinite(x0)) or not np.any(x0):
            raise ConfigError(f"x0 must be a finite non-zero vector of length {n}, got {x0.tolist()}")
    found: list[np.ndarray] = []
    t0 = time.perf_counter()
    for i in tqdm(range(n), desc="paper FE", unit="pair", leave=False, disable=not progress):
        x = x0.copy() if (i == 0 and x0 is not None) else rng.standard_normal(n)
        for v in found:  # eq. (B1)
            x = x - (v @ x) / (v @ v) * v
        if start_norm is not None and not (i == 0 and x0 is not None):
            x = x * (start_norm / np.linalg.norm(x))
        Euler().check_step(YiField(a, radius=float(np.linalg.norm(x))), h)
        x = _euler_run(a, x, h, steps)
        if not np.all(np.isfinite(x)):
            raise ConfigError(f"forward Euler diverged in run {i + 1} (h={h:g}); the seed's step is t_f/N")
        for v in found:  # eq. (30)
            x = x - (v @ x) / (v @ v) * v
        found.append(x)
    seconds = time.perf_counter() - t0
    return finish(a, found, "paper", seconds, [steps] * n, device,
                  info={"t_final": float(t_final), "h": h, "steps_per_run": steps})
