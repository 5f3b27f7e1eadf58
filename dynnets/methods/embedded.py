"""Embedded Runge-Kutta pairs: an ``EmbeddedTableau`` stepped by ``ExplicitRK``, with the error estimates
and dense output ``dynnets.solve`` uses; a fixed-step method in any ``Step`` too.
"""

from __future__ import annotations

from ..checks import check_int
from ..errors import ConfigTypeError
from . import tableaux
from .rk import ExplicitRK, nonzero
from .tableau import EmbeddedTableau, dense_weights_at


class EmbeddedPair(ExplicitRK):
    """An explicit step with the error estimate and dense output of an ``EmbeddedTableau``. The error is
    ||e|| (order p-hat + 1 in h) or, with two estimators (p_1 > p_2), Hairer's DOP853 estimate
    ||e_1||^2 / sqrt(||e_1||^2 + 0.01 ||e_2||^2) (order 2 (p_1 + 1) - (p_2 + 1)): ``error_order``.
    """

    def __init__(self, tableau: EmbeddedTableau):
        if not isinstance(tableau, EmbeddedTableau):
            raise ConfigTypeError(f"EmbeddedPair needs an EmbeddedTableau (EmbeddedTableau.from_lists(a, b, "
                                  f"embedded=..., dense=...)), got {type(tableau).__name__}")
        super().__init__(tableau)
        #: ``nonzero(b - b-hat)`` for each embedded vector, highest embedded order first
        self.error_weights = tuple(nonzero([b - w for b, w in zip(tableau.b, v)]) for v in tableau.embedded)
        orders = sorted(tableau.embedded_orders, reverse=True)
        self.error_order = orders[0] + 1 if len(orders) == 1 else 2 * (orders[0] + 1) - (orders[1] + 1)
        #: the index of a stage at (t + h, x') (row of A = b, c = 1), reused as the next first stage, or None
        self.fsal = next((i for i, row in enumerate(tableau.a) if tableau.c[i] == 1.0 and row == tableau.b),
                         None)
        used = max(j for weights in (self.weights, *self.error_weights) for j, _ in weights) + 1
        #: stages evaluated per attempted step (with the first-same-as-last stage, whose value starts the
        #: next step); the dense output may need more (``dense_stages``)
        self.step_stages = max(used, (self.fsal + 1) if self.fsal is not None else 0)
        self.dense = tableau.dense
        self.dense_stages = None if self.dense is None else max(
            i + 1 for i, row in enumerate(self.dense) if any(v != 0.0 for v in row))

    def attempt(self, field, x, h, t, ks: list) -> tuple[list, object]:
        """(stages, x') of one attempted step, ``ks`` holding k_1 (``stages``); the first-same-as-last stage's
        input is x' itself (a_fsal = b: the same operations, so the same bits), combined once, not twice."""
        if self.fsal is None:
            ks = self.stages(field, x, h, t, ks, count=self.step_stages)
            return ks, self.combine(x, h, ks, self.weights)
        ks = self.stages(field, x, h, t, ks, count=self.fsal)
        x_new = self.combine(x, h, ks, self.weights)
        ks.append(self.evaluate(field, self.fsal, x_new, h, t))
        return self.stages(field, x, h, t, ks, count=self.step_stages), x_new

    def complete_dense(self, field, x, h, t, ks: list) -> int:
        """Append to the accepted step's stages ``ks`` those the dense output needs beyond them (DOP853's 3
        more); returns the number of evaluations made."""
        missing = self.dense_stages - len(ks)
        if missing > 0:
            self.stages(field, x, h, t, ks, count=self.dense_stages)
        return max(0, missing)

    def interpolate(self, field, x, h, t, ks: list, theta: float) -> tuple:
        """(the dense output x + h sum_i b_i(theta) k_i at t + theta h of the accepted step from x with stages
        ``ks``, evaluations made)."""
        evaluated = self.complete_dense(field, x, h, t, ks)
        return self.combine(x, h, ks, nonzero(dense_weights_at(self.dense, theta))), evaluated

    def __repr__(self) -> str:
        embedded = ",".join(str(q) for q in self.tableau.embedded_orders)
        return f"{type(self).__name__}({self.tableau.name}, order={self.order}({embedded}))"


class DormandPrince5(EmbeddedPair):
    """Dormand-Prince 5(4) (SciPy's RK45, torchdiffeq's dopri5): 7 stages, the last first-same-as-last (6
    evaluations per step), error estimate of order 5 in h, dense output of order 4 (Shampine 1986) or, with
    ``dense_order=5``, of order 5 (``tableaux.DORMAND_PRINCE_5_DENSE_5``: the same steps)."""

    def __init__(self, dense_order: int = 4):
        dense_order = check_int("DormandPrince5 dense_order", dense_order, minimum=4, maximum=5)
        super().__init__(tableaux.DORMAND_PRINCE_5 if dense_order == 4 else tableaux.DORMAND_PRINCE_5_DENSE_5)


class BogackiShampine3(EmbeddedPair):
    """Bogacki-Shampine 3(2) (SciPy's RK23, torchdiffeq's bosh3): 4 stages, the last first-same-as-last
    (3 evaluations per step), cubic Hermite dense output (order 3)."""

    def __init__(self):
        super().__init__(tableaux.BOGACKI_SHAMPINE_3)


class DormandPrince853(EmbeddedPair):
    """DOP853 (Hairer's code, SciPy's DOP853): order 8 with embedded orders 5 and 3 combined into one
    estimate of order 8 in h, 12 stages plus a first-same-as-last one (12 evaluations per step), dense
    output of order 7 on 3 more stages (evaluated only for steps that interpolate)."""

    def __init__(self):
        super().__init__(tableaux.DORMAND_PRINCE_853)
