"""One generic explicit Runge-Kutta step that runs every Butcher tableau.

    k_i = F(t + c_i h, x + h sum_{j<i} a_ij k_j),    x' = x + h sum_i b_i k_i

(an autonomous field is evaluated as F(x)). ``stages`` is also the error-controlled solver's stage loop
(``dynnets.solvers``). Every Runge-Kutta method preserves the field's linear invariants.
"""

from __future__ import annotations

import torch

from ..base import Method, scaled
from ..errors import ConfigError, ConfigTypeError, TableauError
from ..structure import Lipschitz
from . import tableaux
from .tableau import ButcherTableau


def nonzero(weights) -> tuple[tuple[int, float], ...]:
    """(j, w_j) for the non-zero entries of a weight vector (explicit Euler is exactly x + h F(x))."""
    return tuple((j, float(w)) for j, w in enumerate(weights) if w != 0.0)


class TableauMethod(Method):
    """A Runge-Kutta method running a validated ``ButcherTableau``, its name and computed order
    (``ExplicitRK``, ``ImplicitRK``)."""

    handles_time = True

    def __init__(self, tableau: ButcherTableau):
        if not isinstance(tableau, ButcherTableau):
            raise ConfigTypeError(f"{type(self).__name__} needs a ButcherTableau "
                                  f"(ButcherTableau.from_lists(a, b)), got {type(tableau).__name__}")
        self.tableau, self.name, self.order = tableau, tableau.name, tableau.order

    @property
    def real_stability_interval(self) -> float:
        return self.tableau.real_stability_interval

    def check_start_time(self, field, t) -> None:
        """ConfigError when a time-dependent field is stepped without its start time t."""
        if field.time_dependent and t is None:
            raise ConfigError(f"{self.name} on the time-dependent {type(field).__name__} needs the step's "
                              "start time t (step(field, x, h, t))")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.tableau.name}, order={self.order})"


class ExplicitRK(TableauMethod):
    """Explicit Runge-Kutta method given by a validated ``ButcherTableau``; a step evaluates only the
    stages its weights b use (stages after the last non-zero b_i cannot change x')."""

    def __init__(self, tableau: ButcherTableau):
        super().__init__(tableau)
        implicit = tableau.first_implicit_entry()
        if implicit is not None:
            i, j = implicit
            raise TableauError(f"tableau {tableau.name!r} is not explicit: a[{i}][{j}] = {tableau.a[i][j]} "
                               "is on or above the diagonal (ExplicitRK needs a strictly lower-triangular A; "
                               "use ImplicitRK(tableau))")
        self._stages = tuple(nonzero(row) for row in tableau.a)
        self._c = tableau.c
        #: ``nonzero(b)``: the step's weights as (stage, b_i) pairs, for ``combine``
        self.weights = nonzero(tableau.b)
        #: the field evaluations of one step: up to the last stage with a non-zero weight b_i
        self.stage_count = self.weights[-1][0] + 1
        #: explicit Euler (one stage, b = (1)): x' = x + h F(x), whose field may know a sharper Lipschitz bound
        self.is_euler = len(self._stages) == 1 and self.weights == ((0, 1.0),)

    def stages(self, field, x: torch.Tensor, h, t=None, ks: list | None = None, count: int | None = None) -> list:
        """k_len(ks), ..., k_(count-1) (default: up to the last stage b uses) appended to ``ks``; ``t``, the
        start time, is needed by a time-dependent field."""
        ks = [] if ks is None else ks
        self.check_start_time(field, t)
        for i in range(len(ks), self.stage_count if count is None else count):
            ks.append(self.evaluate(field, i, self.combine(x, h, ks, self._stages[i]), h, t))
        return ks

    def evaluate(self, field, i: int, xi: torch.Tensor, h, t=None) -> torch.Tensor:
        """k_i = F(t + c_i h, xi) (F(xi) for an autonomous field) at the stage's input xi."""
        if not field.time_dependent:
            return field(xi)
        return field.at(t + scaled(self._c[i], h) if self._c[i] else t, xi)

    @staticmethod
    def combine(x: torch.Tensor | None, h, ks, weights) -> torch.Tensor:
        """x + h sum_j w_j k_j for ``weights`` = ``nonzero(w)`` (x None: the sum alone)."""
        for j, w in weights:
            term = scaled(w, h) * ks[j]
            x = term if x is None else x + term
        return x

    def step(self, field, x: torch.Tensor, h, t=None) -> torch.Tensor:
        return self.combine(x, h, self.stages(field, x, h, t), self.weights)

    def guarantees(self, field, h) -> frozenset:
        props = set(field.linear_invariants())
        sharp = field.euler_lipschitz_bound(h) if self.is_euler else None
        if sharp is not None:
            props.add(Lipschitz(float(sharp)))
        return frozenset(props)

    def lipschitz_bound(self, field, h) -> float:
        """Lip(x_i) <= 1 + h sum_j |a_ij| L Lip(x_j), step 1 + h sum_i |b_i| L Lip(x_i) (L = Lip F); for
        Euler, the field's sharper bound when it has one."""
        sharp = field.euler_lipschitz_bound(h) if self.is_euler else None
        if sharp is not None:
            return float(sharp)
        L = field.lipschitz_bound()
        h = float(h)
        lips = []
        for row in self._stages:
            lips.append(1.0 + h * sum(abs(aij) * L * lips[j] for j, aij in row))
        return 1.0 + h * sum(abs(bj) * L * lips[j] for j, bj in self.weights)


class Euler(ExplicitRK):
    """Explicit (forward) Euler: x' = x + h F(x). Order 1."""

    def __init__(self):
        super().__init__(tableaux.EULER)


class Heun(ExplicitRK):
    """Heun's method (explicit trapezoidal rule). Order 2."""

    def __init__(self):
        super().__init__(tableaux.HEUN)


class RK4(ExplicitRK):
    """The classical fourth-order Runge-Kutta method."""

    def __init__(self):
        super().__init__(tableaux.CLASSIC_RK4)
