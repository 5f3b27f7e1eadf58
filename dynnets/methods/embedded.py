"""Embedded Runge-Kutta pairs: one explicit step with error estimates and a dense output, all validated.

An embedded pair is an explicit tableau (A, c) with the step's weights b (order p) and one or two
further weight vectors b-hat on the same stages (orders p-hat < p), so that

    x' = x + h sum_i b_i k_i,      e = h sum_i (b_i - b-hat_i) k_i        (Hairer, Norsett, Wanner I, II.4)

estimates the local error of the lower order at the cost of no extra evaluation; the step continues with
the higher order (local extrapolation). A dense output is a weight vector polynomial in theta in [0, 1],

    x(t + theta h) ~ x + h sum_i b_i(theta) k_i,      b_i(theta) = sum_j P_ij theta^j,

possibly on extra stages evaluated only when it is needed. Every order is computed by the rooted-tree
conditions (``ButcherTableau.order_of``): of b, of each b-hat, and of the dense output, which at a fixed
theta is the Runge-Kutta method (A / theta, b(theta) / theta) with step theta h. A pair whose orders do
not come out as claimed is refused (``TableauError``).

The stages are those of ``ExplicitRK`` (``stages``, ``combine``): a pair is an ``ExplicitRK`` and can be
used as a fixed-step method in any ``Step``; ``dynnets.solve`` adds the step-size control.
"""

from __future__ import annotations

import math
from functools import cache

from ..errors import TableauError
from . import dop853
from . import tableau as tableaux
from .rk import ExplicitRK, nonzero
from .tableau import ButcherTableau

#: the interior points at which the order of a dense output is computed (its order is the minimum)
DENSE_CHECK_POINTS = (0.25, 0.5, 0.75)


class EmbeddedPair(ExplicitRK):
    """An explicit Runge-Kutta step (weights b) with embedded weights ``embedded`` (one or two vectors
    b-hat) for its error estimate and an optional dense output ``dense`` (P, one row per stage: b_i(theta)
    = sum_j P_ij theta^(j+1)). ``claimed`` = (p, p-hat..., dense order) is confirmed against the
    computed orders.

    With one estimator the error is ||e|| (of order p-hat + 1 in h); with two (e_1 of order p_1 + 1 and
    e_2 of order p_2 + 1, p_1 > p_2) it is Hairer's DOP853 estimate ||e_1||^2 / sqrt(||e_1||^2 +
    0.01 ||e_2||^2), of order 2 (p_1 + 1) - (p_2 + 1) in h. ``error_order`` is that exponent k; a
    step-size controller scales h by err^(-1/k).
    """

    def __init__(self, tableau: ButcherTableau, embedded, *, dense=None, claimed: tuple[int, ...]):
        super().__init__(tableau)
        self.embedded = tuple(tuple(float(w) for w in vector) for vector in embedded)
        if len(self.embedded) not in (1, 2):
            raise TableauError(f"pair {tableau.name!r}: one or two embedded weight vectors, got {len(self.embedded)}")
        self._errors = tuple(nonzero([b - w for b, w in zip(tableau.b, vector)]) for vector in self.embedded)
        self.dense = None if dense is None else tuple(tuple(float(v) for v in row) for row in dense)
        self.embedded_orders, self.dense_order = _orders(tableau, self.embedded, self.dense)
        found = (self.order, *self.embedded_orders, *(() if dense is None else (self.dense_order,)))
        if tuple(claimed) != found:
            raise TableauError(f"pair {tableau.name!r} claims orders {tuple(claimed)} (step, embedded..., dense) but "
                               f"the order conditions give {found}")
        if not all(0 < q < self.order for q in self.embedded_orders):
            raise TableauError(f"pair {tableau.name!r}: embedded orders {self.embedded_orders} must lie in [1, "
                               f"{self.order}) for an error estimate")
        orders = sorted(self.embedded_orders, reverse=True)
        self.error_order = orders[0] + 1 if len(orders) == 1 else 2 * (orders[0] + 1) - (orders[1] + 1)
        self.fsal = _first_same_as_last(tableau)
        used = max(j for weights in (self._weights, *self._errors) for j, _ in weights) + 1
        #: stages evaluated per attempted step (with the first-same-as-last stage, whose value starts the
        #: next step); the dense output may need more (``dense_stages``)
        self.step_stages = max(used, (self.fsal + 1) if self.fsal is not None else 0)
        self.dense_stages = None if dense is None else max(
            i + 1 for i, row in enumerate(self.dense) if any(v != 0.0 for v in row))

    @property
    def error_weights(self) -> tuple:
        """``nonzero(b - b-hat)`` for each embedded vector, highest embedded order first."""
        return self._errors

    def dense_weights(self, theta: float) -> tuple:
        """``nonzero(b(theta))``: x(t + theta h) ~ x + h sum_i b_i(theta) k_i."""
        return nonzero(_dense_at(self.dense, theta))

    def __repr__(self) -> str:
        embedded = ",".join(str(q) for q in self.embedded_orders)
        return f"{type(self).__name__}({self.tableau.name}, order={self.order}({embedded}))"


def _dense_at(dense, theta: float) -> list[float]:
    """b_i(theta) = sum_j P_ij theta^(j+1) for every stage (Horner)."""
    weights = []
    for row in dense:
        value = 0.0
        for coefficient in reversed(row):
            value = (value + coefficient) * theta
        weights.append(value)
    return weights


@cache
def _orders(tab: ButcherTableau, embedded: tuple, dense: tuple | None) -> tuple[tuple[int, ...], int | None]:
    """The computed orders of the embedded weights and of the dense output (min over DENSE_CHECK_POINTS of
    the order of (A / theta, b(theta) / theta), module docstring); once per pair."""
    embedded_orders = tuple(tab.order_of(vector) for vector in embedded)
    if dense is None:
        return embedded_orders, None
    if len(dense) != tab.stages:
        raise TableauError(f"pair {tab.name!r}: the dense output needs one row per stage ({tab.stages}), got "
                           f"{len(dense)}")
    orders = []
    for theta in DENSE_CHECK_POINTS:
        scaled = ButcherTableau.from_lists([[v / theta for v in row] for row in tab.a],
                                           [w / theta for w in _dense_at(dense, theta)],
                                           name=f"{tab.name} dense output at theta={theta}")
        orders.append(scaled.order)
    return embedded_orders, min(orders)


def _first_same_as_last(tab: ButcherTableau) -> int | None:
    """The index of a stage evaluated at (t + h, x') (its row of A is b exactly and c = 1), whose
    value is the next step's first stage, or None."""
    for i, row in enumerate(tab.a):
        if tab.c[i] == 1.0 and row == tab.b:
            return i
    return None


def _polynomial(shift: int, ones: int) -> list[float]:
    """Coefficients of theta^1..theta^d of theta^shift (1 - theta)^ones (shift >= 1)."""
    coefficients = [0.0] * (shift + ones)
    for k in range(ones + 1):
        coefficients[shift + k - 1] = math.comb(ones, k) * (-1.0) ** k
    return coefficients


def hermite_dense(b, first: int, last: int) -> tuple[tuple[float, ...], ...]:
    """The cubic Hermite interpolant through x, x', F(x) = k_first, F(x') = k_last as stage weights:
    b(theta) = (3 theta^2 - 2 theta^3) b + (theta - 2 theta^2 + theta^3) e_first + (theta^3 - theta^2)
    e_last (order 3 wherever the step has order >= 3)."""
    rows = [[0.0, 3.0 * bi, -2.0 * bi] for bi in b]
    rows[first] = [v + w for v, w in zip(rows[first], (1.0, -2.0, 1.0))]
    rows[last] = [v + w for v, w in zip(rows[last], (0.0, -1.0, 1.0))]
    return tuple(tuple(row) for row in rows)


@cache
def _dop853_dense() -> tuple[tuple[float, ...], ...]:
    """DOP853's dense output (Hairer's ``contd8``) as stage weights polynomial in theta: with r2 = b,
    r3 = e_0 - b, r4 = 2 b - e_0 - e_12 and r5..r8 the rows D_m,
    b(theta) = theta r2 + theta(1-theta) r3 + theta^2(1-theta) r4 + theta^2(1-theta)^2 r5
               + theta^3(1-theta)^2 r6 + theta^3(1-theta)^3 r7 + theta^4(1-theta)^3 r8."""
    stages = len(dop853.A)
    b = [dop853.A[12].get(j, 0.0) for j in range(stages)]
    first = [1.0 if j == 0 else 0.0 for j in range(stages)]
    last = [1.0 if j == 12 else 0.0 for j in range(stages)]
    vectors = [b, [f - v for f, v in zip(first, b)], [2 * v - f - g for v, f, g in zip(b, first, last)]]
    vectors += [[row.get(j, 0.0) for j in range(stages)] for row in dop853.D]
    bases = [_polynomial(1, 0), _polynomial(1, 1), _polynomial(2, 1), _polynomial(2, 2), _polynomial(3, 2),
             _polynomial(3, 3), _polynomial(4, 3)]
    rows = [[0.0] * 7 for _ in range(stages)]
    for vector, basis in zip(vectors, bases):
        for j in range(stages):
            for power, coefficient in enumerate(basis):
                rows[j][power] += coefficient * vector[j]
    return tuple(tuple(row) for row in rows)


@cache
def _dop853_tableau() -> ButcherTableau:
    stages = len(dop853.A)
    a = [[row.get(j, 0.0) for j in range(stages)] for row in dop853.A]
    return ButcherTableau.from_lists(a, a[12], dop853.C, name="DormandPrince853")


class DormandPrince5(EmbeddedPair):
    """Dormand-Prince 5(4) (``DOPRI5``, as in SciPy's RK45 and torchdiffeq's dopri5): 7 stages, the last
    first-same-as-last (6 evaluations per step), error estimate of order 5 in h, dense output of order 4
    (Shampine 1986, the coefficients for Dormand and Prince's continuous extension)."""

    def __init__(self):
        super().__init__(tableaux.DOPRI5, (tableaux.DOPRI5_BHAT,), dense=tableaux.DOPRI5_DENSE, claimed=(5, 4, 4))


class BogackiShampine3(EmbeddedPair):
    """Bogacki-Shampine 3(2) (SciPy's RK23, torchdiffeq's bosh3): 4 stages, the last first-same-as-last
    (3 evaluations per step), cubic Hermite dense output (order 3)."""

    def __init__(self):
        tab = tableaux.BS3
        super().__init__(tab, (tableaux.BS3_BHAT,), dense=hermite_dense(tab.b, 0, 3), claimed=(3, 2, 3))


class DormandPrince853(EmbeddedPair):
    """DOP853 (Hairer's code, SciPy's DOP853): order 8 with embedded orders 5 and 3 combined into one
    estimate of order 8 in h, 12 stages plus a first-same-as-last one (12 evaluations per step), dense
    output of order 7 on 3 more stages (evaluated only for steps that interpolate)."""

    def __init__(self):
        tab = _dop853_tableau()
        bhat5 = [b - dop853.E5.get(j, 0.0) for j, b in enumerate(tab.b)]
        bhat3 = [dop853.BHAT3.get(j, 0.0) for j in range(tab.stages)]
        super().__init__(tab, (bhat5, bhat3), dense=_dop853_dense(), claimed=(8, 5, 3, 7))
