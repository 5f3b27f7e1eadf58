"""The named Butcher tableaux, every order computed from the coefficients at import (``tableau``); adding a
Runge-Kutta method is one constant here (docs/architecture.md, "Adding things")."""

from __future__ import annotations

import math

from . import dop853
from .tableau import ButcherTableau, EmbeddedTableau

__all__ = [
    "BOGACKI_SHAMPINE_3", "CLASSIC_RK4", "DORMAND_PRINCE_5", "DORMAND_PRINCE_5_DENSE_5", "DORMAND_PRINCE_853", "EULER",
    "EXPLICIT_MIDPOINT",
    "GAUSS_LEGENDRE_1", "GAUSS_LEGENDRE_2", "GAUSS_LEGENDRE_3", "HEUN", "RADAU_IIA_2", "RADAU_IIA_3", "SSPRK3",
]


# explicit (coefficients: Hairer, Norsett, Wanner I, II.1 and II.5)
EULER = ButcherTableau.from_lists([[0]], [1], name="Euler", order=1)
HEUN = ButcherTableau.from_lists([[0, 0], [1, 0]], [1 / 2, 1 / 2], name="Heun", order=2)
EXPLICIT_MIDPOINT = ButcherTableau.from_lists([[0, 0], [1 / 2, 0]], [0, 1], name="ExplicitMidpoint", order=2)
SSPRK3 = ButcherTableau.from_lists([[0, 0, 0], [1, 0, 0], [1 / 4, 1 / 4, 0]], [1 / 6, 1 / 6, 2 / 3],
                                   name="SSPRK3", order=3)
CLASSIC_RK4 = ButcherTableau.from_lists([[0, 0, 0, 0], [1 / 2, 0, 0, 0], [0, 1 / 2, 0, 0], [0, 0, 1, 0]],
                                        [1 / 6, 1 / 3, 1 / 3, 1 / 6], name="RK4", order=4)
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
#: the two stages (c = 1/2, 1/4) and the quintic dense output of ``DORMAND_PRINCE_5_DENSE_5``, nearest doubles of
#: exact rationals. Each new row keeps the dense output's order-5 conditions solvable by satisfying, as DP5's
#: stages 1, 3-7 do, sum_j a_j = c, sum a_j c_j = c^2/2, sum a_j c_j^2 = c^3/3 and
#: sum a_j c_j^3 + (41/5000 - 3 c/125) a_2 - (3/500) sum_j a_j a_j2 = c^4/4; the free entries a_82, a_86, a_87 =
#: 0.2575, -0.01287, -0.003758 and a_92, a_96, a_97, a_98 = 0.09857, 0.003441, -0.004475, -0.06809 are a rounded
#: minimiser of the L2 norm over theta of the order-6 error coefficients (1.75e-4; 3.5e-4 with stages at c = 1/3,
#: 2/3 taken from the order-4 output); the order-5 conditions then fix b(theta) (degree 5), which comes out C^1:
#: b(1) = b, b'(0) = e_1, b'(1) = e_7. Every order is recomputed at import (``orders``).
_DP5_EXTRA = (
    (0.04631757732732733, 0.2575, 0.15999739815286984, 0.05418146396396396, -0.0013684394441611423, -0.01287,
     -0.003758),
    (0.08998144537307194, 0.09857, 0.11359043381597721, 0.028770172238431615, -0.011788051427480762, 0.003441,
     -0.004475, -0.06809),
)
_DP5_DENSE_5 = (
    (1.0, -3.9430613374739263, 6.141360070562436, -3.9978069620364267, 0.8906540622812504),
    (0.0, 0.0, 0.0, 0.0, 0.0),
    (0.0, 7.512332213250814, -52.83540846367671, 85.38000177906548, -39.607689230346686),
    (0.0, 6.032911461573155, -30.677540071900577, 46.51155409241502, -21.21588381542093),
    (0.0, -3.3005890866849676, 16.59672326407791, -24.90356016432733, 11.285049807689106),
    (0.0, 1.4385885542031867, -7.170911394464273, 10.68081903108089, -4.8175438098674235),
    (0.0, -1.391576905799354, 7.105670762410297, -11.036610807422532, 5.322516950811589),
    (0.0, -8.424129163712722, 41.98090347610854, -58.68941946107891, 25.132645148683093),
    (0.0, 2.0755242646438137, 18.859202356882378, -43.944977507696194, 23.010250886170006),
)
#: Dormand-Prince 5(4) with a dense output of order 5 on two more stages (evaluated only on steps that
#: interpolate); the step, its error estimate and its first-same-as-last stage are DORMAND_PRINCE_5's
DORMAND_PRINCE_5_DENSE_5 = EmbeddedTableau.from_lists(
    [(*row, 0, 0) for row in DORMAND_PRINCE_5.a] + [(*_DP5_EXTRA[0], 0, 0), (*_DP5_EXTRA[1], 0)],
    (*DORMAND_PRINCE_5.b, 0, 0), (*DORMAND_PRINCE_5.c, 1 / 2, 1 / 4),
    embedded=[(*DORMAND_PRINCE_5.embedded[0], 0, 0)], dense=_DP5_DENSE_5,
    name="DormandPrince5(dense_order=5)", orders=(5, 4, 5),
)
_BS3_B = (2 / 9, 1 / 3, 4 / 9, 0)
#: Bogacki-Shampine 3(2) (Appl. Math. Lett. 2 (1989) 321-325): the fourth stage is F(t + h, x'); second-order
#: weights b-hat; the cubic Hermite dense output through x, x', k_1 = F(x), k_4 = F(x'),
#: b(theta) = (3 th^2 - 2 th^3) b + (th - 2 th^2 + th^3) e_1 + (th^3 - th^2) e_4
BOGACKI_SHAMPINE_3 = EmbeddedTableau.from_lists(
    [[0, 0, 0, 0], [1 / 2, 0, 0, 0], [0, 3 / 4, 0, 0], list(_BS3_B)], _BS3_B,
    embedded=[(7 / 24, 1 / 4, 1 / 3, 1 / 8)],
    dense=[(1, 3 * (2 / 9) - 2, 1 - 2 * (2 / 9)), (0, 3 * (1 / 3), -2 * (1 / 3)), (0, 3 * (4 / 9), -2 * (4 / 9)),
           (0, -1, 1)],
    name="BogackiShampine3", orders=(3, 2, 3),
)
#: DOP853 (Hairer's code): order 8, embedded orders 5 and 3, dense output of order 7 on 3 extra stages
DORMAND_PRINCE_853 = dop853.tableau()

# implicit (Hairer, Wanner II, IV.5): Gauss-Legendre collocation (order 2 s, symplectic, symmetric) and
# Radau IIA (order 2 s - 1, L-stable, neither symplectic nor symmetric)
GAUSS_LEGENDRE_1 = ButcherTableau.from_lists([[1 / 2]], [1], name="ImplicitMidpoint", order=2)
_R3 = math.sqrt(3.0) / 6.0
GAUSS_LEGENDRE_2 = ButcherTableau.from_lists([[1 / 4, 1 / 4 - _R3], [1 / 4 + _R3, 1 / 4]], [1 / 2, 1 / 2],
                                             [1 / 2 - _R3, 1 / 2 + _R3], name="GaussLegendre2", order=4)
_R15 = math.sqrt(15.0)
GAUSS_LEGENDRE_3 = ButcherTableau.from_lists(
    [[5 / 36, 2 / 9 - _R15 / 15, 5 / 36 - _R15 / 30],
     [5 / 36 + _R15 / 24, 2 / 9, 5 / 36 - _R15 / 24],
     [5 / 36 + _R15 / 30, 2 / 9 + _R15 / 15, 5 / 36]],
    [5 / 18, 4 / 9, 5 / 18], [1 / 2 - _R15 / 10, 1 / 2, 1 / 2 + _R15 / 10], name="GaussLegendre3", order=6)
RADAU_IIA_2 = ButcherTableau.from_lists([[5 / 12, -1 / 12], [3 / 4, 1 / 4]], [3 / 4, 1 / 4], [1 / 3, 1],
                                        name="RadauIIA2", order=3)
_R6 = math.sqrt(6.0)
RADAU_IIA_3 = ButcherTableau.from_lists(
    [[11 / 45 - 7 * _R6 / 360, 37 / 225 - 169 * _R6 / 1800, -2 / 225 + _R6 / 75],
     [37 / 225 + 169 * _R6 / 1800, 11 / 45 + 7 * _R6 / 360, -2 / 225 - _R6 / 75],
     [4 / 9 - _R6 / 36, 4 / 9 + _R6 / 36, 1 / 9]],
    [4 / 9 - _R6 / 36, 4 / 9 + _R6 / 36, 1 / 9], [2 / 5 - _R6 / 10, 2 / 5 + _R6 / 10, 1.0],
    name="RadauIIA3", order=5)
