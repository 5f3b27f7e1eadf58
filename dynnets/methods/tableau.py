"""Butcher tableaux, explicit or implicit, validated at construction; every property is computed.

    c | A          stage i:  X_i = x + h sum_j a_ij k_j,  k_i = F(X_i)
    --+----
      | b^T        step:     x' = x + h sum_i b_i k_i

Computed from the coefficients, never declared: the order (rooted-tree conditions up to min(2 s, 10)
vertices, ``trees``; ``order_of`` for any weight vector); ``first_implicit_entry``; ``is_symplectic``
(b_i a_ij + b_j a_ji = b_i b_j, Cooper; GNI IV.2.1, VI.4.1); ``is_symmetric`` (a_(s+1-i)(s+1-j) + a_ij = b_j,
b_(s+1-i) = b_i, so Psi_(-h) = Psi_h^(-1); GNI V.2.2); the stability function and interval (``stability``).
Every comparison with zero is relative to the magnitude of the terms summed (scale-aware).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property, reduce

from ..checks import as_real, check_int
from ..errors import TableauError
from . import stability, trees

#: coefficients beyond this magnitude are refused: the order conditions multiply up to 10 of them and
#: the stability function up to s, which must stay finite in float64 (and the step in float32)
MAX_ENTRY = 1e12


def _zero(defect: float, scale: float, terms: int) -> bool:
    """|defect| <= 4 (terms + 1) eps scale: a sum of ``terms`` products of magnitude ``scale`` is zero."""
    return abs(defect) <= 4.0 * (terms + 1) * trees.EPS * scale


def check_claimed_order(order, name: str) -> int:
    """A claimed order must be a positive integer (not a bool, a float or nan)."""
    return check_int(f"tableau {name!r}: a claimed order", order, minimum=1, error=TableauError)


@dataclass(frozen=True)
class ButcherTableau:
    """c | A over b^T. A may be full (implicit); c_i = sum_j a_ij and sum_i b_i = 1 are required."""

    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    c: tuple[float, ...]
    name: str = "custom"

    @classmethod
    def from_lists(cls, a, b, c=None, *, name: str = "custom", order: int | None = None):
        """Build from nested lists; ``c`` defaults to A's row sums; a claimed ``order`` must be confirmed."""
        claimed = None if order is None else check_claimed_order(order, name)
        a_t = tuple(_reals(name, f"row {i} of A", row) for i, row in enumerate(_rows(name, "A", a)))
        b_t = _reals(name, "b", b)
        c_t = None if c is None else _reals(name, "c", c)
        _check_entries(name, a_t, b_t, c_t)
        tab = cls(a_t, b_t, tuple(math.fsum(row) for row in a_t) if c_t is None else c_t, name)
        if claimed is not None:
            tab.confirm_order(claimed)
        return tab

    def __post_init__(self):
        _check_entries(self.name, self.a, self.b, self.c)
        for i, row in enumerate(self.a):
            if not _zero(math.fsum((*row, -self.c[i])), math.fsum(abs(v) for v in (*row, self.c[i])), len(row)):
                raise TableauError(f"tableau {self.name!r}: row {i} of A sums to {math.fsum(row)} but "
                                   f"c[{i}] = {self.c[i]} (consistency needs c_i = sum_j a_ij)")
        if not _zero(math.fsum((*self.b, -1.0)), math.fsum(abs(v) for v in self.b) + 1.0, self.stages):
            raise TableauError(f"tableau {self.name!r}: weights b sum to {math.fsum(self.b)}, consistency "
                               "needs sum b = 1")

    @property
    def stages(self) -> int:
        return len(self.b)

    @property
    def max_checked_order(self) -> int:
        """Orders are checked up to min(2 s, trees.MAX_ORDER): no s-stage method exceeds 2 s."""
        return min(2 * self.stages, trees.MAX_ORDER)

    def order_of(self, weights) -> int:
        """The largest p <= ``max_checked_order`` whose order conditions (A, weights) hold to round-off."""
        weights = _reals(self.name, "a weight vector", weights)
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
            raise TableauError(f"tableau {self.name!r} claims order {claimed}, but an {self.stages}-stage "
                               f"method is checked up to order {self.max_checked_order} (2 s, at most "
                               f"{trees.MAX_ORDER})")
        if self.order < claimed:
            raise TableauError(f"tableau {self.name!r} claims order {claimed} but satisfies the order "
                               f"conditions only up to order {self.order}")

    def first_implicit_entry(self) -> tuple[int, int] | None:
        """(i, j) of the first non-zero a_ij with j >= i, or None for an explicit (strictly lower triangular A)
        tableau."""
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

    @cached_property
    def real_stability_interval(self) -> float:
        """The largest r with |R(-x)| <= 1 on [0, r] (2.7853 for RK4, inf for Gauss and Radau IIA)."""
        return stability.real_stability_interval(self.a, self.b)


def _rows(name: str, what: str, rows, of: str = "rows of real numbers") -> list:
    """``rows`` (A, the embedded weights, the dense-output rows, or one row) as a list."""
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Iterable):
        raise TableauError(f"tableau {name!r}: {what} must be a sequence of {of}, got {rows!r}")
    return list(rows)


def _reals(name: str, what: str, values) -> tuple[float, ...]:
    """One row of coefficients as floats (a NaN or inf is reported with the shapes by _check_entries)."""
    return tuple(as_real(f"tableau {name!r}: an entry of {what}", v, TableauError)
                 for v in _rows(name, what, values, "real numbers"))


def _check_entries(name: str, a, b, c) -> None:
    """Shapes match, every entry is finite and at most MAX_ENTRY in magnitude."""
    s = len(b)
    if s == 0:
        raise TableauError(f"tableau {name!r} has no stages")
    if len(a) != s or any(len(row) != s for row in a) or (c is not None and len(c) != s):
        raise TableauError(f"tableau {name!r}: A must be {s}x{s} and c of length {s} to match b (got A rows "
                           f"{[len(r) for r in a]}, len(c)={None if c is None else len(c)})")
    for v in (*b, *(() if c is None else c), *(x for row in a for x in row)):
        if not math.isfinite(v):
            raise TableauError(f"tableau {name!r} has a non-finite entry {v}")
        if abs(v) > MAX_ENTRY:
            raise TableauError(f"tableau {name!r} has an entry {v:.6g} beyond {MAX_ENTRY:.0e} in magnitude "
                               f"(the order conditions multiply up to {trees.MAX_ORDER} coefficients and "
                               "would overflow)")


def dense_weights_at(dense, theta: float) -> list[float]:
    """b_i(theta) = sum_j P_ij theta^(j+1) for every stage (Horner)."""
    return [reduce(lambda value, coefficient: (value + coefficient) * theta, reversed(row), 0.0)
            for row in dense]


@dataclass(frozen=True)
class EmbeddedTableau(ButcherTableau):
    """An explicit tableau with weights b (order p), one or two embedded weight vectors b-hat (orders < p)
    and an optional dense output P (one row per stage, b_i(theta) = sum_j P_ij theta^(j+1)):

        x' = x + h sum_i b_i k_i,      e = h sum_i (b_i - b-hat_i) k_i        (Hairer, Norsett, Wanner I, II.4)

    x(t + theta h) ~ x + h sum_i b_i(theta) k_i (extra stages have b_i = 0). Every order is computed by the
    rooted-tree conditions (the dense output's at fixed theta as the method (A / theta, b(theta) / theta),
    minimum over theta = 1/4, 1/2, 3/4).
    """

    embedded: tuple[tuple[float, ...], ...] = ()
    dense: tuple[tuple[float, ...], ...] | None = None

    @classmethod
    def from_lists(cls, a, b, c=None, *, embedded=(), dense=None, name: str = "custom", orders=None):
        """Build and validate; ``orders`` = (p, p-hat..., dense order) must equal the computed orders
        (``TableauError``)."""
        base = ButcherTableau.from_lists(a, b, c, name=name)
        vectors = tuple(_reals(name, "an embedded weight vector", v) for v in _rows(name, "embedded", embedded))
        rows = None if dense is None else tuple(_reals(name, "a dense-output row", r) for r in _rows(name, "dense", dense))
        tab = cls(base.a, base.b, base.c, name, vectors, rows)
        if orders is not None:
            try:
                claimed = tuple(check_claimed_order(q, name) for q in orders)
            except TypeError:
                raise TableauError(f"pair {name!r}: orders must be a tuple (step, embedded..., dense), got "
                                   f"orders={orders!r}") from None
            found = (tab.order, *tab.embedded_orders, *(() if rows is None else (tab.dense_order,)))
            if claimed != found:
                raise TableauError(f"pair {name!r} claims orders {claimed} (step, embedded..., dense) but the order "
                                   f"conditions give {found}")
        return tab

    def __post_init__(self):
        super().__post_init__()
        if len(self.embedded) not in (1, 2):
            raise TableauError(f"pair {self.name!r}: one or two embedded weight vectors, got {len(self.embedded)}")
        if any(len(v) != self.stages for v in self.embedded):
            raise TableauError(f"pair {self.name!r}: each embedded weight vector needs {self.stages} entries")
        if self.first_implicit_entry() is not None:
            raise TableauError(f"pair {self.name!r}: an embedded pair must be explicit")
        if self.dense is not None and (len(self.dense) != self.stages or len({len(r) for r in self.dense}) != 1):
            raise TableauError(f"pair {self.name!r}: the dense output needs one row per stage ({self.stages}), "
                               f"all of one length, got {len(self.dense)} rows")

    @cached_property
    def embedded_orders(self) -> tuple[int, ...]:
        orders = tuple(self.order_of(vector) for vector in self.embedded)
        if not all(0 < q < self.order for q in orders):
            raise TableauError(f"pair {self.name!r}: embedded orders {orders} must lie in [1, {self.order}) for an "
                               "error estimate")
        return orders

    @cached_property
    def dense_order(self) -> int | None:
        if self.dense is None:
            return None
        return min(ButcherTableau.from_lists([[v / theta for v in row] for row in self.a],
                                             [w / theta for w in dense_weights_at(self.dense, theta)],
                                             name=f"{self.name} dense output at theta={theta}").order
                   for theta in (0.25, 0.5, 0.75))

