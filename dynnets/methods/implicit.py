"""Implicit Runge-Kutta steps for any tableau, with guarantees read off the tableau's computed properties.

    K_i = F(x + h sum_j a_ij K_j)   (solved by Newton's method, ``newton``),    x' = x + h sum_i b_i K_i

The guarantees read off the tableau (GNI IV.1-2, VI.4, V.2) are docs/structure.md's; they hold for the step
computed, as Newton reaches round-off or raises ``NotConvergedError``.

A time-dependent field F(t, x) is integrated as the autonomous (x, s) -> (F(s, x), 1) (``_Autonomised``):
the time component of stage i is exactly t + c_i h, so the guarantees hold for each map x -> Psi_(t, h)(x).
"""

from __future__ import annotations

import math

import torch

from ..base import Field
from ..checks import check_size
from ..errors import ConfigError
from ..memory import transforms_active
from ..structure import CanonicalHamiltonian, PreservesVolume, Symplectic
from . import tableaux
from .ift import StageSolve
from .newton import StageProblem, StageSolution
from .rk import TableauMethod
from .tableau import ButcherTableau

#: largest Newton system s n per sample (a dense (s n)^2 matrix: 128 MiB in float64 at the limit); a larger
#: one raises ConfigError
MAX_SYSTEM = 4096


class ImplicitRK(TableauMethod):
    """A Runge-Kutta method from any (implicit or explicit) ``ButcherTableau``, stages solved by Newton's
    method to round-off (``max_iterations`` Newton updates at most, then ``NotConvergedError``)."""

    def __init__(self, tableau: ButcherTableau, *, max_iterations: int = 50):
        super().__init__(tableau)
        self.max_iterations = check_size("max_iterations", max_iterations)
        self._a = torch.tensor(tableau.a, dtype=torch.float64)
        self._b = torch.tensor(tableau.b, dtype=torch.float64)

    def solve(self, field, x: torch.Tensor, h) -> StageSolution:
        """The converged stages with the iteration count (no autograd), e.g. for diagnostics."""
        problem = self._problem(field, x)
        return problem.solve(x, float(h), problem.own)

    def _problem(self, field, x: torch.Tensor) -> StageProblem:
        axes = field.state_ndim
        if x.dim() < 2 or (axes is not None and x.dim() != 1 + axes):
            states = "" if axes is None else f" ({axes}-axis states for {type(field).__name__})"
            raise ConfigError(f"{self.name} solves one Newton system per state; it needs batched states "
                              f"(batch, *state) with one batch axis{states}, got shape {tuple(x.shape)}; "
                              "reshape the batch to one axis")
        size = self.tableau.stages * math.prod(x.shape[1:])
        if size > MAX_SYSTEM:
            raise ConfigError(f"{self.name} solves a dense Newton system of size s n per sample; it needs "
                              f"batched states (batch, ...) with s n <= {MAX_SYSTEM}, got shape "
                              f"{tuple(x.shape)} (s n = {size}); use an explicit method for large states")
        return StageProblem(field, self._a, self.name, self.max_iterations)

    def step(self, field, x: torch.Tensor, h, t=None) -> torch.Tensor:
        if field.time_dependent:
            self._problem(field, x)  # the same refusal of unbatched or too large states
            self.check_start_time(field, t)
            extended = _Autonomised(field, x.shape[1:], t)
            return self.step(extended, extended.extend(x, t), h)[:, :-1].reshape(x.shape)
        problem = self._problem(field, x)
        tracked = torch.is_grad_enabled() and any(isinstance(v, torch.Tensor) and v.requires_grad
                                                  for v in (x, h, *problem.own))
        if tracked or transforms_active():
            K = StageSolve.apply(x, h, problem, *problem.own)
        else:  # nothing to differentiate: skip the autograd Function's bookkeeping
            K = problem.solve(x, float(h), problem.own).stages
        increment = problem.combine(self._b.to(dtype=K.dtype, device=K.device).unsqueeze(0), K)
        return x + h * increment.reshape(x.shape)

    def residual(self, field, x: torch.Tensor, y: torch.Tensor, h, t=None) -> torch.Tensor:
        """One stage: r = x + h F(t + a h, x + a (y - x)) - y, a = a_11, one field evaluation and no Newton
        solve (docs/structure.md, learning from pairs). More stages: ``Method.residual``."""
        if self.tableau.stages != 1 or (field.time_dependent and t is None):
            return super().residual(field, x, y, h, t)  # step() names a missing start time
        a = self.tableau.a[0][0]
        return x + h * field.at(None if t is None else t + a * h, x + a * (y - x)) - y

    def guarantees(self, field, h) -> frozenset:
        props = set(field.linear_invariants())
        if self.tableau.is_symplectic:
            props.update(field.quadratic_invariants())
            if field.has_trait(CanonicalHamiltonian):
                props.update((Symplectic(), PreservesVolume()))  # det of a symplectic matrix is 1
        return frozenset(props)

    def invertible(self, field) -> bool:
        return self.tableau.is_symmetric

    def inverse(self, field, y: torch.Tensor, h, t=None) -> torch.Tensor:
        """Psi_(t, h)^(-1)(y) = Psi_(t + h, -h)(y) for a symmetric tableau (an implicit solve again)."""
        if not self.tableau.is_symmetric:
            return super().inverse(field, y, h)
        return self.step(field, y, -h, None if t is None else t + h)


class _Autonomised(Field):
    """(x, s) -> (F(t0 + s, x), 1) on flattened states plus s = t - t0, starting at 0 (t0 the value of t:
    a large |t| does not loosen the Newton tolerance; s carries the gradient of a tensor t)."""

    def __init__(self, field: Field, shape, t):
        super().__init__()
        self.field, self.shape = field, tuple(shape)
        if isinstance(t, torch.Tensor) and t.numel() != 1:
            raise ConfigError(f"an implicit step of the time-dependent {type(field).__name__} starts all rows at one "
                              f"time t (shape ()), got t of shape {tuple(t.shape)}; step rows with different "
                              "start times separately")
        self.t0 = float(t.detach()) if isinstance(t, torch.Tensor) else float(t)
        self.dim = math.prod(self.shape) + 1

    def extend(self, x: torch.Tensor, t) -> torch.Tensor:
        s = (t - self.t0) if isinstance(t, torch.Tensor) else torch.zeros((), dtype=x.dtype, device=x.device)
        return torch.cat([x.reshape(x.shape[0], -1), s.to(x.dtype).expand(x.shape[0], 1)], dim=1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        x = y[:, :-1].reshape(y.shape[0], *self.shape)
        derivative = self.field.at(self.t0 + y[:, -1], x).reshape(y.shape[0], -1)
        return torch.cat([derivative, torch.ones_like(y[:, -1:])], dim=1)


class ImplicitMidpoint(ImplicitRK):
    """x' = x + h F((x + x') / 2): Gauss-Legendre with one stage. Order 2, symplectic, symmetric."""

    def __init__(self, *, max_iterations: int = 50):
        super().__init__(tableaux.GAUSS_LEGENDRE_1, max_iterations=max_iterations)


_GAUSS = {1: tableaux.GAUSS_LEGENDRE_1, 2: tableaux.GAUSS_LEGENDRE_2, 3: tableaux.GAUSS_LEGENDRE_3}
_RADAU = {2: tableaux.RADAU_IIA_2, 3: tableaux.RADAU_IIA_3}


def _pick(family: str, table: dict, stages) -> ButcherTableau:
    if type(stages) is not int or stages not in table:  # not 2.0 or True: a count of stages
        raise ConfigError(f"{family} is available with stages in {sorted(table)}, got stages={stages!r}")
    return table[stages]


class GaussLegendre(ImplicitRK):
    """Gauss-Legendre collocation with s = 1, 2, 3 stages: order 2 s, symplectic, symmetric, A-stable."""

    def __init__(self, stages: int = 2, *, max_iterations: int = 50):
        super().__init__(_pick("GaussLegendre", _GAUSS, stages), max_iterations=max_iterations)


class RadauIIA(ImplicitRK):
    """Radau IIA with s = 2, 3 stages: order 2 s - 1, L-stable (for stiff fields); neither symplectic nor
    symmetric, so it keeps only linear invariants."""

    def __init__(self, stages: int = 3, *, max_iterations: int = 50):
        super().__init__(_pick("RadauIIA", _RADAU, stages), max_iterations=max_iterations)
