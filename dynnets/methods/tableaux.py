"""The named Butcher tableaux (every order computed from the coefficients at import; ``tableau``).

Adding a Runge-Kutta method is one constant here and, for a method class of its own, one small class in
``rk.py`` (explicit), ``implicit.py`` or ``embedded.py`` plus an export line in ``methods/__init__.py``;
``ExplicitRK(tableau)``, ``ImplicitRK(tableau)`` and ``EmbeddedPair(tableau)`` run any of them directly.
"""

from __future__ import annotations

import math

from . import dop853
from .tableau import ButcherTableau, EmbeddedTableau, hermite_dense

__all__ = [
    "BOGACKI_SHAMPINE_3", "CLASSIC_RK4", "DORMAND_PRINCE_5", "DORMAND_PRINCE_853", "EULER", "EXPLICIT_MIDPOINT",
    "GAUSS_LEGENDRE_1", "GAUSS_LEGENDRE_2", "GAUSS_LEGENDRE_3", "HEUN", "RADAU_IIA_2", "RADAU_IIA_3", "SSPRK3",
]


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
EXPLICIT_MIDPOINT = ButcherTableau.from_lists([[0, 0], [1 / 2, 0]], [0, 1], name="ExplicitMidpoint", order=2)
SSPRK3 = ButcherTableau.from_lists(
    [[0, 0, 0], [1, 0, 0], [1 / 4, 1 / 4, 0]], [1 / 6, 1 / 6, 2 / 3], name="SSPRK3", order=3
)
CLASSIC_RK4 = ButcherTableau.from_lists(
    [[0, 0, 0, 0], [1 / 2, 0, 0, 0], [0, 1 / 2, 0, 0], [0, 0, 1, 0]],
    [1 / 6, 1 / 3, 1 / 3, 1 / 6],
    name="RK4",
    order=4,
)
#: Dormand-Prince 5(4) (the last row of A repeats b: first same as last), its fourth-order weights b-hat and
#: its dense output (Shampine, Math. Comp. 46 (1986) 135-150, with Dormand and Prince's optimal c_6)
DORMAND_PRINCE_5 = EmbeddedTableau.from_lists(
    [[0, 0, 0, 0, 0, 0, 0],
     [1 / 5, 0, 0, 0, 0, 0, 0],
     [3 / 40, 9 / 40, 0, 0, 0, 0, 0],
     [44 / 45, -56 / 15, 32 / 9, 0, 0, 0, 0],
     [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729, 0, 0, 0],
     [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656, 0, 0],
     [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0]],
    [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0],
    embedded=[(5179 / 57600, 0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)],
    dense=(
        (1, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432),
        (0, 0, 0, 0),
        (0, 131558114200 / 32700410799, -68118460800 / 10900136933, 87487479700 / 32700410799),
        (0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072),
        (0, 127303824393 / 49829197408, -318862633887 / 49829197408, 701980252875 / 199316789632),
        (0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844),
        (0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423),
    ),
    name="DormandPrince5", orders=(5, 4, 4),
)
_BS3_B = (2 / 9, 1 / 3, 4 / 9, 0)
#: Bogacki-Shampine 3(2) (Appl. Math. Lett. 2 (1989) 321-325): the fourth stage is F(t + h, x'); second-order
#: weights b-hat; the cubic Hermite dense output through x, x', F(x), F(x')
BOGACKI_SHAMPINE_3 = EmbeddedTableau.from_lists(
    [[0, 0, 0, 0], [1 / 2, 0, 0, 0], [0, 3 / 4, 0, 0], list(_BS3_B)], _BS3_B,
    embedded=[(7 / 24, 1 / 4, 1 / 3, 1 / 8)], dense=hermite_dense(_BS3_B, 0, 3),
    name="BogackiShampine3", orders=(3, 2, 3),
)
#: DOP853 (Hairer's code): order 8, embedded orders 5 and 3, dense output of order 7 on 3 extra stages
DORMAND_PRINCE_853 = dop853.tableau()

# implicit (Hairer, Wanner II, IV.5): Gauss-Legendre collocation (order 2 s, symplectic, symmetric) and
# Radau IIA (order 2 s - 1, L-stable, neither symplectic nor symmetric)
GAUSS_LEGENDRE_1 = ButcherTableau.from_lists([[1 / 2]], [1], name="ImplicitMidpoint", order=2)
GAUSS_LEGENDRE_2 = _gauss_legendre_2()
GAUSS_LEGENDRE_3 = _gauss_legendre_3()
RADAU_IIA_2 = ButcherTableau.from_lists([[5 / 12, -1 / 12], [3 / 4, 1 / 4]], [3 / 4, 1 / 4], [1 / 3, 1],
                                        name="RadauIIA2", order=3)
RADAU_IIA_3 = _radau_iia_3()
