"""Butcher tableaux, checked for explicitness and consistency at construction.

The order is *computed* from the order conditions (rooted trees up to order 4, Hairer-Norsett-Wanner
I, Table II.2.2), never merely claimed: a claimed order the conditions do not confirm is an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import TableauError

_TOL = 1e-12


def _close(x: float, y: float) -> bool:
    return abs(x - y) <= _TOL * max(1.0, abs(y))


@dataclass(frozen=True)
class ButcherTableau:
    """c | A over b^T, for an explicit method: A strictly lower triangular, c_i = sum_j a_ij."""

    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    c: tuple[float, ...]
    name: str = "custom"

    @classmethod
    def from_lists(cls, a, b, c=None, *, name: str = "custom", order: int | None = None):
        """Build from nested lists; ``c`` defaults to the row sums of ``a``; ``order``, if given, is
        checked against the order conditions."""
        try:
            a_t = tuple(tuple(float(v) for v in row) for row in a)
            b_t = tuple(float(v) for v in b)
            c_t = tuple(sum(row) for row in a_t) if c is None else tuple(float(v) for v in c)
        except (TypeError, ValueError) as err:
            raise TableauError(f"tableau {name!r}: entries must be real numbers ({err})") from None
        tab = cls(a_t, b_t, c_t, name)
        if order is not None and tab.order < order:
            raise TableauError(
                f"tableau {name!r} claims order {order} but satisfies the order conditions only up to "
                f"order {tab.order}"
            )
        return tab

    def __post_init__(self):
        s = len(self.b)
        if s == 0:
            raise TableauError(f"tableau {self.name!r} has no stages")
        if len(self.a) != s or any(len(row) != s for row in self.a) or len(self.c) != s:
            raise TableauError(
                f"tableau {self.name!r}: A must be {s}x{s} and c of length {s} to match b "
                f"(got A rows {[len(r) for r in self.a]}, len(c)={len(self.c)})"
            )
        for v in (*self.b, *self.c, *(x for row in self.a for x in row)):
            if not math.isfinite(v):
                raise TableauError(f"tableau {self.name!r} has a non-finite entry {v}")
        for i, row in enumerate(self.a):
            for j in range(i, s):
                if row[j] != 0.0:
                    raise TableauError(
                        f"tableau {self.name!r} is not explicit: a[{i}][{j}] = {row[j]} is on or above "
                        "the diagonal (explicit methods need a strictly lower-triangular A)"
                    )
            if not _close(self.c[i], sum(row)):
                raise TableauError(
                    f"tableau {self.name!r}: row {i} of A sums to {sum(row)} but c[{i}] = {self.c[i]} "
                    "(consistency needs c_i = sum_j a_ij)"
                )
        if not _close(sum(self.b), 1.0):
            raise TableauError(
                f"tableau {self.name!r}: weights b sum to {sum(self.b)}, consistency needs sum b = 1"
            )

    @property
    def stages(self) -> int:
        return len(self.b)

    def stability_polynomial(self) -> tuple[float, ...]:
        """Coefficients (ascending powers) of R(z) = 1 + sum_k z^k b^T A^(k-1) 1, the amplification
        factor of the method applied to y' = lambda y with z = h lambda (Hairer-Wanner II, IV.2)."""
        s, a = self.stages, self.a
        coeffs = [1.0]
        v = [1.0] * s  # A^(k-1) 1
        for _ in range(s):
            coeffs.append(sum(bi * vi for bi, vi in zip(self.b, v)))
            v = [sum(a[i][j] * v[j] for j in range(s)) for i in range(s)]
        while len(coeffs) > 1 and coeffs[-1] == 0.0:
            coeffs.pop()
        return tuple(coeffs)

    @property
    def real_stability_interval(self) -> float:
        """The largest r with |R(-x)| <= 1 for all x in [0, r]: h lambda must lie in [-r, 0] for a
        real negative eigenvalue lambda. Computed from the roots of R(-x) = +-1 (exact up to root
        finding): 2 for Euler and Heun, 2.5127 for SSPRK3, 2.7853 for RK4."""
        import numpy as np

        coeffs = self.stability_polynomial()
        neg = np.array([c * (-1.0) ** k for k, c in enumerate(coeffs)])  # P(x) = R(-x), ascending

        def amp(x: float) -> float:
            return abs(float(np.polynomial.polynomial.polyval(x, neg)))

        candidates = []
        for shift in (1.0, -1.0):
            shifted = neg.copy()
            shifted[0] -= shift
            for root in np.polynomial.polynomial.polyroots(shifted):
                if abs(root.imag) <= 1e-9 * max(1.0, abs(root.real)) and root.real > 1e-12:
                    candidates.append(float(root.real))
        for x in sorted(candidates):
            # a root where |R| only touches 1 does not end the interval; one where it leaves does
            if amp(x * (1 + 1e-7) + 1e-12) > 1.0:
                return x
        return float("inf")  # |R(-x)| <= 1 on the whole negative axis (not possible for explicit RK)

    @property
    def order(self) -> int:
        """Highest p <= 4 for which all order conditions hold (4 means 'at least 4')."""
        s, a, b, c = self.stages, self.a, self.b, self.c
        ac = [sum(a[i][j] * c[j] for j in range(s)) for i in range(s)]
        ac2 = [sum(a[i][j] * c[j] ** 2 for j in range(s)) for i in range(s)]
        aac = [sum(a[i][j] * ac[j] for j in range(s)) for i in range(s)]

        def dot(u, v=None):
            return sum(b[i] * u[i] * (1.0 if v is None else v[i]) for i in range(s))

        conditions = {
            2: [(dot(c), 1 / 2)],
            3: [(dot([x * x for x in c]), 1 / 3), (dot(ac), 1 / 6)],
            4: [
                (dot([x**3 for x in c]), 1 / 4),
                (dot(c, ac), 1 / 8),
                (dot(ac2), 1 / 12),
                (dot(aac), 1 / 24),
            ],
        }
        order = 1
        for p in (2, 3, 4):
            if all(_close(v, target) for v, target in conditions[p]):
                order = p
            else:
                break
        return order


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
