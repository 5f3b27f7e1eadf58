"""Butcher tableaux, explicit or implicit, validated at construction; every property is computed.

    c | A          stage i:  X_i = x + h sum_j a_ij k_j,  k_i = F(X_i)
    --+----
      | b^T        step:     x' = x + h sum_i b_i k_i

Computed from the coefficients, never declared:

- the order, from the order conditions of all rooted trees up to min(2 s, 10) vertices (``trees``),
  for ``b`` or for any other weight vector (``order_of``: e.g. the b-hat of an embedded pair);
- ``is_explicit`` (A strictly lower triangular);
- ``is_symplectic``: b_i a_ij + b_j a_ji - b_i b_j = 0 for all i, j (Cooper's condition: the method then
  conserves every quadratic first integral and is symplectic on Hamiltonian fields; Hairer, Lubich,
  Wanner, Geometric Numerical Integration, IV.2.1 and VI.4.1);
- ``is_symmetric``: a_(s+1-i)(s+1-j) + a_ij = b_j and b_(s+1-i) = b_i (the adjoint method, stages in
  reverse order, is the method itself, so Psi_(-h) = Psi_h^(-1); GNI V.2.2);
- the stability function and real stability interval (``stability``).

Every comparison with zero is scale-aware: a relation is accepted when its defect is within a few
eps of the magnitude of the terms it adds up, so the verdicts hold for coefficients of any size.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from functools import cached_property

from ..errors import TableauError
from . import stability, trees

EPS = 2.0 ** -52
#: coefficients beyond this magnitude are refused: the order conditions multiply up to 10 of them and
#: the stability function up to s, which must stay finite in float64 (and the step in float32)
MAX_ENTRY = 1e12


def _zero(defect: float, scale: float, terms: int) -> bool:
    """``defect`` (a sum of ``terms`` rounded products whose magnitudes add up to ``scale``) is zero up
    to round-off: |defect| <= 4 (terms + 1) eps scale."""
    return abs(defect) <= 4.0 * (terms + 1) * EPS * scale


def check_claimed_order(order, name: str) -> int:
    """A claimed order must be a positive integer (not a bool, a float or nan)."""
    if isinstance(order, bool) or not isinstance(order, numbers.Integral) or order < 1:
        raise TableauError(f"tableau {name!r}: a claimed order must be a positive integer, got order={order!r}")
    return int(order)


@dataclass(frozen=True)
class ButcherTableau:
    """c | A over b^T. A may be full (implicit); c_i = sum_j a_ij and sum_i b_i = 1 are required."""

    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    c: tuple[float, ...]
    name: str = "custom"

    @classmethod
    def from_lists(cls, a, b, c=None, *, name: str = "custom", order: int | None = None):
        """Build from nested lists; ``c`` defaults to the row sums of ``a``; ``order``, if given, must be a
        positive integer that the order conditions confirm (a lower bound of the computed order)."""
        claimed = None if order is None else check_claimed_order(order, name)
        try:
            a_t = tuple(tuple(float(v) for v in row) for row in a)
            b_t = tuple(float(v) for v in b)
            c_t = None if c is None else tuple(float(v) for v in c)
        except (TypeError, ValueError) as err:
            raise TableauError(f"tableau {name!r}: entries must be real numbers ({err})") from None
        _check_entries(name, a_t, b_t, c_t)
        tab = cls(a_t, b_t, tuple(math.fsum(row) for row in a_t) if c_t is None else c_t, name)
        if claimed is not None:
            tab.confirm_order(claimed)
        return tab

    def __post_init__(self):
        _check_entries(self.name, self.a, self.b, self.c)
        for i, row in enumerate(self.a):
            if not _zero(math.fsum((*row, -self.c[i])), math.fsum(abs(v) for v in (*row, self.c[i])), len(row)):
                raise TableauError(
                    f"tableau {self.name!r}: row {i} of A sums to {math.fsum(row)} but c[{i}] = {self.c[i]} "
                    "(consistency needs c_i = sum_j a_ij)"
                )
        if not _zero(math.fsum((*self.b, -1.0)), math.fsum(abs(v) for v in self.b) + 1.0, self.stages):
            raise TableauError(
                f"tableau {self.name!r}: weights b sum to {math.fsum(self.b)}, consistency needs sum b = 1"
            )

    @property
    def stages(self) -> int:
        return len(self.b)

    @property
    def max_checked_order(self) -> int:
        """Orders are checked up to min(2 s, trees.MAX_ORDER): no s-stage method exceeds 2 s."""
        return min(2 * self.stages, trees.MAX_ORDER)

    def order_of(self, weights) -> int:
        """The order of the method (A, weights): the largest p <= ``max_checked_order`` for which every
        order condition with at most p vertices holds to round-off (0 if even sum w = 1 fails)."""
        weights = tuple(float(w) for w in weights)
        if len(weights) != self.stages:
            raise TableauError(f"tableau {self.name!r}: a weight vector needs {self.stages} entries, got "
                               f"{len(weights)}")
        return trees.order_of(self.a, weights, self.max_checked_order)

    @cached_property
    def order(self) -> int:
        """The order of (A, b) (``order_of(b)``); ``max_checked_order`` means 'at least that'."""
        return self.order_of(self.b)

    def confirm_order(self, claimed: int) -> None:
        """Refuse a claimed order that the order conditions do not confirm."""
        claimed = check_claimed_order(claimed, self.name)
        if claimed > self.max_checked_order:
            raise TableauError(
                f"tableau {self.name!r} claims order {claimed}, but an {self.stages}-stage method is checked up "
                f"to order {self.max_checked_order} (2 s, at most {trees.MAX_ORDER})"
            )
        if self.order < claimed:
            raise TableauError(
                f"tableau {self.name!r} claims order {claimed} but satisfies the order conditions only up to "
                f"order {self.order}"
            )

    @property
    def is_explicit(self) -> bool:
        """A strictly lower triangular: each stage uses only earlier ones."""
        return all(v == 0.0 for i, row in enumerate(self.a) for v in row[i:])

    def first_implicit_entry(self) -> tuple[int, int] | None:
        """(i, j) of the first non-zero a_ij with j >= i, or None for an explicit tableau."""
        return next(((i, j) for i, row in enumerate(self.a) for j in range(i, self.stages) if row[j] != 0.0), None)

    @cached_property
    def is_symplectic(self) -> bool:
        """b_i a_ij + b_j a_ji = b_i b_j for all i, j, to round-off (module docstring)."""
        a, b = self.a, self.b
        return all(
            _zero(b[i] * a[i][j] + b[j] * a[j][i] - b[i] * b[j],
                  abs(b[i] * a[i][j]) + abs(b[j] * a[j][i]) + abs(b[i] * b[j]), 3)
            for i in range(self.stages) for j in range(i, self.stages)
        )

    @cached_property
    def is_symmetric(self) -> bool:
        """a_(s-1-i)(s-1-j) + a_ij = b_j and b_(s-1-i) = b_i (0-based), to round-off."""
        a, b, s = self.a, self.b, self.stages
        weights = all(_zero(b[s - 1 - i] - b[i], abs(b[i]) + abs(b[s - 1 - i]), 2) for i in range(s))
        return weights and all(
            _zero(a[s - 1 - i][s - 1 - j] + a[i][j] - b[j], abs(a[s - 1 - i][s - 1 - j]) + abs(a[i][j]) + abs(b[j]), 3)
            for i in range(s) for j in range(s)
        )

    def stability_function(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(numerator, denominator) coefficients, ascending, of R(z) (``stability.stability_function``)."""
        return stability.stability_function(self.a, self.b)

    @cached_property
    def real_stability_interval(self) -> float:
        """The largest r with |R(-x)| <= 1 on [0, r]: h lambda must lie in [-r, 0] for a real negative
        eigenvalue lambda. 2 for Euler and Heun, 2.5127 for SSPRK3, 2.7853 for RK4, inf for the A-stable
        Gauss and Radau IIA methods."""
        return stability.real_stability_interval(self.a, self.b)


def _check_entries(name: str, a, b, c) -> None:
    """Shapes match, every entry is finite and at most MAX_ENTRY in magnitude."""
    s = len(b)
    if s == 0:
        raise TableauError(f"tableau {name!r} has no stages")
    if len(a) != s or any(len(row) != s for row in a) or (c is not None and len(c) != s):
        raise TableauError(
            f"tableau {name!r}: A must be {s}x{s} and c of length {s} to match b "
            f"(got A rows {[len(r) for r in a]}, len(c)={None if c is None else len(c)})"
        )
    for v in (*b, *(() if c is None else c), *(x for row in a for x in row)):
        if not math.isfinite(v):
            raise TableauError(f"tableau {name!r} has a non-finite entry {v}")
        if abs(v) > MAX_ENTRY:
            raise TableauError(
                f"tableau {name!r} has an entry {v:.6g} beyond {MAX_ENTRY:.0e} in magnitude (the order conditions "
                f"multiply up to {trees.MAX_ORDER} coefficients and would overflow)"
            )


def _gauss_legendre_2() -> ButcherTableau:
    r = math.sqrt(3.0) / 6.0
    return ButcherTableau.from_lists([[1 / 4, 1 / 4 - r], [1 / 4 + r, 1 / 4]], [1 / 2, 1 / 2],
                                     [1 / 2 - r, 1 / 2 + r], name="GaussLegendre2", order=4)


def _gauss_legendre_3() -> ButcherTableau:
    r = math.sqrt(15.0)
    return ButcherTableau.from_lists(
        [[5 / 36, 2 / 9 - r / 15, 5 / 36 - r / 30],
         [5 / 36 + r / 24, 2 / 9, 5 / 36 - r / 24],
         [5 / 36 + r / 30, 2 / 9 + r / 15, 5 / 36]],
        [5 / 18, 4 / 9, 5 / 18], [1 / 2 - r / 10, 1 / 2, 1 / 2 + r / 10], name="GaussLegendre3", order=6)


def _radau_iia_3() -> ButcherTableau:
    r = math.sqrt(6.0)
    return ButcherTableau.from_lists(
        [[11 / 45 - 7 * r / 360, 37 / 225 - 169 * r / 1800, -2 / 225 + r / 75],
         [37 / 225 + 169 * r / 1800, 11 / 45 + 7 * r / 360, -2 / 225 - r / 75],
         [4 / 9 - r / 36, 4 / 9 + r / 36, 1 / 9]],
        [4 / 9 - r / 36, 4 / 9 + r / 36, 1 / 9], [2 / 5 - r / 10, 2 / 5 + r / 10, 1.0], name="RadauIIA3", order=5)


# explicit (coefficients: Hairer, Norsett, Wanner I, II.1 and II.5)
EULER = ButcherTableau.from_lists([[0]], [1], name="Euler", order=1)
HEUN = ButcherTableau.from_lists([[0, 0], [1, 0]], [1 / 2, 1 / 2], name="Heun", order=2)
MIDPOINT = ButcherTableau.from_lists([[0, 0], [1 / 2, 0]], [0, 1], name="Midpoint", order=2)
SSPRK3 = ButcherTableau.from_lists(
    [[0, 0, 0], [1, 0, 0], [1 / 4, 1 / 4, 0]], [1 / 6, 1 / 6, 2 / 3], name="SSPRK3", order=3
)
RK4 = ButcherTableau.from_lists(
    [[0, 0, 0, 0], [1 / 2, 0, 0, 0], [0, 1 / 2, 0, 0], [0, 0, 1, 0]],
    [1 / 6, 1 / 3, 1 / 3, 1 / 6],
    name="RK4",
    order=4,
)
#: Dormand-Prince 5(4), the fifth-order weights (the last row of A repeats b: first same as last)
DOPRI5 = ButcherTableau.from_lists(
    [[0, 0, 0, 0, 0, 0, 0],
     [1 / 5, 0, 0, 0, 0, 0, 0],
     [3 / 40, 9 / 40, 0, 0, 0, 0, 0],
     [44 / 45, -56 / 15, 32 / 9, 0, 0, 0, 0],
     [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729, 0, 0, 0],
     [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656, 0, 0],
     [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0]],
    [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0],
    name="DormandPrince5", order=5,
)
#: the fourth-order weights b-hat of the Dormand-Prince pair (``DOPRI5.order_of(DOPRI5_BHAT) == 4``)
DOPRI5_BHAT = (5179 / 57600, 0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)
#: the dense output of the Dormand-Prince pair, b_i(theta) = sum_j P_ij theta^(j+1) (Shampine, Math.
#: Comp. 46 (1986) 135-150, with Dormand and Prince's optimal c_6; order 4, computed in ``embedded``)
DOPRI5_DENSE = (
    (1, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432),
    (0, 0, 0, 0),
    (0, 131558114200 / 32700410799, -68118460800 / 10900136933, 87487479700 / 32700410799),
    (0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072),
    (0, 127303824393 / 49829197408, -318862633887 / 49829197408, 701980252875 / 199316789632),
    (0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844),
    (0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423),
)
#: Bogacki-Shampine 3(2) (Appl. Math. Lett. 2 (1989) 321-325): the fourth stage is F(t + h, x')
BS3 = ButcherTableau.from_lists(
    [[0, 0, 0, 0], [1 / 2, 0, 0, 0], [0, 3 / 4, 0, 0], [2 / 9, 1 / 3, 4 / 9, 0]], [2 / 9, 1 / 3, 4 / 9, 0],
    name="BogackiShampine3", order=3,
)
#: its second-order weights b-hat
BS3_BHAT = (7 / 24, 1 / 4, 1 / 3, 1 / 8)

# implicit (Hairer, Wanner II, IV.5): Gauss-Legendre collocation (order 2 s, symplectic, symmetric) and
# Radau IIA (order 2 s - 1, L-stable, neither symplectic nor symmetric)
GAUSS1 = ButcherTableau.from_lists([[1 / 2]], [1], name="ImplicitMidpoint", order=2)
GAUSS2 = _gauss_legendre_2()
GAUSS3 = _gauss_legendre_3()
RADAU_IIA2 = ButcherTableau.from_lists([[5 / 12, -1 / 12], [3 / 4, 1 / 4]], [3 / 4, 1 / 4], [1 / 3, 1],
                                       name="RadauIIA2", order=3)
RADAU_IIA3 = _radau_iia_3()
