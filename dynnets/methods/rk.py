"""One generic explicit Runge-Kutta step that runs every Butcher tableau.

    k_i = F(x + h sum_{j<i} a_ij k_j),    x' = x + h sum_i b_i k_i

Any Runge-Kutta method preserves every linear first integral c^T x of the field (c^T k_i = 0 for
all i), so a field declaring ConservesLinear(c) gets LinearInvariant(c).
"""

from __future__ import annotations

import torch

from ..base import Method
from ..errors import ConfigTypeError, TableauError
from ..structure import Lipschitz
from . import tableau as tableaux
from .tableau import ButcherTableau


def _scaled(h, coefficient: float):
    return h if coefficient == 1.0 else h * coefficient


class ExplicitRK(Method):
    """Explicit Runge-Kutta method given by a validated ``ButcherTableau``."""

    def __init__(self, tableau: ButcherTableau):
        if not isinstance(tableau, ButcherTableau):
            raise ConfigTypeError(
                f"ExplicitRK needs a ButcherTableau (ButcherTableau.from_lists(a, b)), got {type(tableau).__name__}"
            )
        implicit = tableau.first_implicit_entry()
        if implicit is not None:
            i, j = implicit
            raise TableauError(
                f"tableau {tableau.name!r} is not explicit: a[{i}][{j}] = {tableau.a[i][j]} is on or above the "
                "diagonal (ExplicitRK needs a strictly lower-triangular A; use ImplicitRK(tableau))"
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
        """Length r of the stability interval [-r, 0] on the negative real axis (from the tableau); with
        the field's ``stiffness()`` it gives ``max_stable_step`` (a Method base class rule)."""
        return self.tableau.real_stability_interval

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

    @property
    def is_euler(self) -> bool:
        """True when the tableau is explicit Euler (one stage, b = (1)): x' = x + h F(x)."""
        return len(self._stages) == 1 and self._weights == ((0, 1.0),)

    def _field_euler_bound(self, field, h):
        """The field's own sharper certified bound of the Euler step (``Field.euler_lipschitz_bound``,
        e.g. gradient fields), or None."""
        return field.euler_lipschitz_bound(h) if self.is_euler else None

    def guarantees(self, field, h) -> frozenset:
        props = set(field.linear_invariants())
        sharp = self._field_euler_bound(field, h)
        if sharp is not None:
            props.add(Lipschitz(float(sharp)))
        return frozenset(props)

    def lipschitz_bound(self, field, h) -> float:
        """Certified bound from Lip(F) = L: stage i has Lip(x_i) <= 1 + h sum_j |a_ij| L Lip(x_j) and
        the step 1 + h sum_i |b_i| L Lip(x_i); for Euler, the field's own sharper certified bound of
        x + h F(x) when it exposes one."""
        sharp = self._field_euler_bound(field, h)
        if sharp is not None:
            return float(sharp)
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
