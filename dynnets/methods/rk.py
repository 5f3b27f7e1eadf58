"""One generic explicit Runge-Kutta step that runs every Butcher tableau.

    k_i = F(x + h sum_{j<i} a_ij k_j),    x' = x + h sum_i b_i k_i

Any Runge-Kutta method preserves every linear first integral c^T x of the field (c^T k_i = 0 for
all i), so a field declaring ConservesLinear(c) gets LinearInvariant(c).
"""

from __future__ import annotations

import torch

from ..structure import ConservesLinear, LinearInvariant
from . import tableau as tableaux
from .base import Method
from .tableau import ButcherTableau


def _scaled(h, coefficient: float):
    return h if coefficient == 1.0 else h * coefficient


class ExplicitRK(Method):
    """Explicit Runge-Kutta method given by a validated ``ButcherTableau``."""

    def __init__(self, tableau: ButcherTableau):
        if not isinstance(tableau, ButcherTableau):
            raise TypeError(
                f"ExplicitRK needs a ButcherTableau (ButcherTableau.from_lists(a, b)), got {type(tableau).__name__}"
            )
        self.tableau = tableau
        self.name = tableau.name
        self.order = tableau.order
        # zero coefficients are skipped and unit ones not multiplied: Euler is exactly x + h F(x)
        self._stages = tuple(
            tuple((j, aij) for j, aij in enumerate(row) if aij != 0.0) for row in tableau.a
        )
        self._weights = tuple((j, bj) for j, bj in enumerate(tableau.b) if bj != 0.0)

    @property
    def real_stability_interval(self) -> float:
        """Length r of the stability interval [-r, 0] on the negative real axis (from the tableau)."""
        return self.tableau.real_stability_interval

    def check_step(self, field, h: float) -> None:
        """A fixed field with a known real negative spectrum (e.g. the semi-discrete heat equation)
        exposes ``check_explicit_step(h, interval, method_name)`` and raises StepSizeError when
        h * spectral_radius exceeds this method's real stability interval."""
        hook = getattr(field, "check_explicit_step", None)
        if hook is not None:
            hook(float(h), self.real_stability_interval, self.name)

    def step(self, field, x: torch.Tensor, h) -> torch.Tensor:
        ks = []
        for row in self._stages:
            xi = x
            for j, aij in row:
                xi = xi + _scaled(h, aij) * ks[j]
            ks.append(field(xi))
        out = x
        for j, bj in self._weights:
            out = out + _scaled(h, bj) * ks[j]
        return out

    def guarantees(self, field, h) -> frozenset:
        return frozenset(
            LinearInvariant(t.c) for t in getattr(field, "traits", ()) if isinstance(t, ConservesLinear)
        )

    def lipschitz_bound(self, field, h) -> float:
        """Certified bound from Lip(F) = L: stage i has Lip(x_i) <= 1 + h sum_j |a_ij| L Lip(x_j) and
        the step 1 + h sum_i |b_i| L Lip(x_i)."""
        L = field.lipschitz_bound()
        h = float(h)
        lips = []
        for row in self._stages:
            lips.append(1.0 + h * sum(abs(aij) * L * lips[j] for j, aij in row))
        return 1.0 + h * sum(abs(bj) * L * lips[j] for j, bj in self._weights)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.tableau.name}, order={self.order})"


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
        super().__init__(tableaux.RK4)
