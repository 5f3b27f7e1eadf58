"""Coefficients of DOP853, Dormand and Prince's explicit Runge-Kutta pair of order 8 with embedded
estimators of orders 5 and 3 and a dense output of order 7 (Hairer, Norsett, Wanner, Solving Ordinary
Differential Equations I, 2nd ed., II.10; the coefficients of Hairer's code DOP853, as published), as the
nearest doubles. Stage rows are sparse ({j: a_ij}); stage 12 (0-based) is the first-same-as-last stage
F(t + h, x'), whose row is b; stages 13-15 are evaluated only for the dense output. Nothing here is
trusted: ``tableau()`` builds the ``EmbeddedTableau``, which computes the order of every weight vector from
the rooted-tree conditions (8 for b, 5 and 3 for the embedded weights, 7 for the dense output).
"""

from __future__ import annotations

import math

from .tableau import EmbeddedTableau

#: the rows of A (stage i uses stages j < i), stages 0..15
A = (
    {},
    {0: 0.05260015195876773},
    {0: 0.0197250569845379, 1: 0.0591751709536137},
    {0: 0.02958758547680685, 2: 0.08876275643042054},
    {0: 0.2413651341592667, 2: -0.8845494793282861, 3: 0.924834003261792},
    {0: 0.037037037037037035, 3: 0.17082860872947386, 4: 0.12546768756682242},
    {0: 0.037109375, 3: 0.17025221101954405, 4: 0.06021653898045596, 5: -0.017578125},
    {0: 0.03709200011850479, 3: 0.17038392571223998, 4: 0.10726203044637328, 5: -0.015319437748624402,
     6: 0.008273789163814023},
    {0: 0.6241109587160757, 3: -3.3608926294469414, 4: -0.868219346841726, 5: 27.59209969944671,
     6: 20.154067550477894, 7: -43.48988418106996},
    {0: 0.47766253643826434, 3: -2.4881146199716677, 4: -0.590290826836843, 5: 21.230051448181193,
     6: 15.279233632882423, 7: -33.28821096898486, 8: -0.020331201708508627},
    {0: -0.9371424300859873, 3: 5.186372428844064, 4: 1.0914373489967295, 5: -8.149787010746927,
     6: -18.52006565999696, 7: 22.739487099350505, 8: 2.4936055526796523, 9: -3.0467644718982196},
    {0: 2.273310147516538, 3: -10.53449546673725, 4: -2.0008720582248625, 5: -17.9589318631188,
     6: 27.94888452941996, 7: -2.8589982771350235, 8: -8.87285693353063, 9: 12.360567175794303,
     10: 0.6433927460157636},
    {0: 0.054293734116568765, 5: 4.450312892752409, 6: 1.8915178993145003, 7: -5.801203960010585,
     8: 0.3111643669578199, 9: -0.1521609496625161, 10: 0.20136540080403034, 11: 0.04471061572777259},
    {0: 0.056167502283047954, 6: 0.25350021021662483, 7: -0.2462390374708025, 8: -0.12419142326381637,
     9: 0.15329179827876568, 10: 0.00820105229563469, 11: 0.007567897660545699, 12: -0.008298},
    {0: 0.03183464816350214, 5: 0.028300909672366776, 6: 0.053541988307438566, 7: -0.05492374857139099,
     10: -0.00010834732869724932, 11: 0.0003825710908356584, 12: -0.00034046500868740456,
     13: 0.1413124436746325},
    {0: -0.42889630158379194, 5: -4.697621415361164, 6: 7.683421196062599, 7: 4.06898981839711,
     8: 0.3567271874552811, 12: -0.0013990241651590145, 13: 2.9475147891527724, 14: -9.15095847217987},
)
C = (0.0, 0.05260015195876773, 0.0789002279381516, 0.1183503419072274, 0.2816496580927726,
     0.3333333333333333, 0.25, 0.3076923076923077, 0.6512820512820513, 0.6, 0.8571428571428571, 1.0, 1.0,
     0.1, 0.2, 0.7777777777777778)
#: the embedded third-order weights b-hat (stages 0, 8, 11)
BHAT3 = {0: 0.2440944881889764, 8: 0.7338466882816118, 11: 0.022058823529411766}
#: b - b-hat of the embedded fifth-order weights
E5 = {0: 0.01312004499419488, 5: -1.2251564463762044, 6: -0.4957589496572502, 7: 1.6643771824549864,
      8: -0.35032884874997366, 9: 0.3341791187130175, 10: 0.08192320648511571, 11: -0.022355307863886294}
#: the dense output's coefficients d_m (m = 5..8 of Hairer's rcont), weights on all 16 stages
D = (
    {0: -8.428938276109013, 5: 0.5667149535193777, 6: -3.0689499459498917, 7: 2.38466765651207,
     8: 2.117034582445028, 9: -0.871391583777973, 10: 2.2404374302607883, 11: 0.6315787787694688,
     12: -0.08899033645133331, 13: 18.148505520854727, 14: -9.194632392478356, 15: -4.436036387594894},
    {0: 10.427508642579134, 5: 242.28349177525817, 6: 165.20045171727028, 7: -374.5467547226902,
     8: -22.113666853125306, 9: 7.733432668472264, 10: -30.674084731089398, 11: -9.332130526430229,
     12: 15.697238121770845, 13: -31.139403219565178, 14: -9.35292435884448, 15: 35.81684148639408},
    {0: 19.985053242002433, 5: -387.0373087493518, 6: -189.17813819516758, 7: 527.8081592054236,
     8: -11.57390253995963, 9: 6.8812326946963, 10: -1.0006050966910838, 11: 0.7777137798053443,
     12: -2.778205752353508, 13: -60.19669523126412, 14: 84.32040550667716, 15: 11.99229113618279},
    {0: -25.69393346270375, 5: -154.18974869023643, 6: -231.5293791760455, 7: 357.6391179106141,
     8: 93.40532418362432, 9: -37.45832313645163, 10: 104.0996495089623, 11: 29.8402934266605,
     12: -43.53345659001114, 13: 96.32455395918828, 14: -39.17726167561544, 15: -149.72683625798564},
)


def _polynomial(shift: int, ones: int) -> list[float]:
    """Coefficients of theta^1..theta^d of theta^shift (1 - theta)^ones (shift >= 1)."""
    coefficients = [0.0] * (shift + ones)
    for k in range(ones + 1):
        coefficients[shift + k - 1] = math.comb(ones, k) * (-1.0) ** k
    return coefficients


def _dense(b: list[float]) -> tuple[tuple[float, ...], ...]:
    """The dense output (Hairer's ``contd8``) as stage weights polynomial in theta: with r2 = b, r3 = e_0 - b,
    r4 = 2 b - e_0 - e_12 and r5..r8 the rows D_m,
    b(theta) = theta r2 + theta(1-theta) r3 + theta^2(1-theta) r4 + theta^2(1-theta)^2 r5
               + theta^3(1-theta)^2 r6 + theta^3(1-theta)^3 r7 + theta^4(1-theta)^3 r8."""
    stages = len(A)
    first = [1.0 if j == 0 else 0.0 for j in range(stages)]
    last = [1.0 if j == 12 else 0.0 for j in range(stages)]
    vectors = [b, [f - v for f, v in zip(first, b)], [2 * v - f - g for v, f, g in zip(b, first, last)]]
    vectors += [[row.get(j, 0.0) for j in range(stages)] for row in D]
    bases = [_polynomial(1, 0), _polynomial(1, 1), _polynomial(2, 1), _polynomial(2, 2), _polynomial(3, 2),
             _polynomial(3, 3), _polynomial(4, 3)]
    rows = [[0.0] * 7 for _ in range(stages)]
    for vector, basis in zip(vectors, bases):
        for j in range(stages):
            for power, coefficient in enumerate(basis):
                rows[j][power] += coefficient * vector[j]
    return tuple(tuple(row) for row in rows)


def tableau() -> EmbeddedTableau:
    """DOP853 as an ``EmbeddedTableau``: b (order 8), b-hat of orders 5 and 3, the dense output (order 7)."""
    stages = len(A)
    a = [[row.get(j, 0.0) for j in range(stages)] for row in A]
    b = a[12]
    bhat5 = [bj - E5.get(j, 0.0) for j, bj in enumerate(b)]
    bhat3 = [BHAT3.get(j, 0.0) for j in range(stages)]
    return EmbeddedTableau.from_lists(a, b, C, embedded=[bhat5, bhat3], dense=_dense(b), name="DormandPrince853",
                                      orders=(8, 5, 3, 7))
