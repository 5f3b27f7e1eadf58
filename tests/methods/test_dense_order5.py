"""DormandPrince5(dense_order=5): the order-5 dense output on two more stages. Its orders are recomputed from
the tableau, it is continuous (b(1) = b) and C^1, its steps are DormandPrince5's bit for bit, and its local
error at interior theta falls like h^6 on Kepler's problem (float64), where the default output's falls like
h^5 (the negative control)."""

import math

import pytest
import torch

import dynnets as dn
from dynnets.errors import ConfigError
from dynnets.methods import tableaux
from dynnets.methods.tableau import dense_weights_at

EPS = torch.finfo(torch.float64).eps
DENSE5, DEFAULT = dn.methods.DormandPrince5(dense_order=5), dn.methods.DormandPrince5()


def test_the_orders_come_from_the_tableau_and_only_the_dense_output_needs_the_two_more_stages():
    tab = tableaux.DORMAND_PRINCE_5_DENSE_5
    assert (tab.order, tab.embedded_orders, tab.dense_order) == (5, (4,), 5)
    assert DEFAULT.tableau.dense_order == 4
    assert (DENSE5.step_stages, DENSE5.dense_stages, DENSE5.fsal) == (7, 9, 6)
    assert (DEFAULT.step_stages, DEFAULT.dense_stages) == (7, 7)
    assert tab.c[7:] == (0.5, 0.25)
    with pytest.raises(ConfigError, match="dense_order must be an integer >= 4"):
        dn.methods.DormandPrince5(dense_order=6)


def test_every_stage_but_the_second_satisfies_the_four_row_conditions_of_the_derivation():
    """The conditions tableaux.py states for the two new rows (a, node c, over the earlier stages):
    sum a_j = c, sum a_j c_j = c^2/2, sum a_j c_j^2 = c^3/3, sum a_j c_j^3 + (41/5000 - 3c/125) a_2 -
    (3/500) sum_j a_j a_j2 = c^4/4; DP5's own stages 1, 3-7 satisfy them too, its stage 2 not (control)."""
    tab = tableaux.DORMAND_PRINCE_5_DENSE_5
    a, c = tab.a, tab.c

    def defects(i):
        row = a[i][:max(i, 2)]  # (stage 2: its own zero a_22 too)
        fourth = (math.fsum(v * c[j] ** 3 for j, v in enumerate(row)) + (41 / 5000 - 3 * c[i] / 125) * row[1]
                  - 3 / 500 * math.fsum(v * a[j][1] for j, v in enumerate(row)) - c[i] ** 4 / 4)
        return [math.fsum(row) - c[i], math.fsum(v * c[j] for j, v in enumerate(row)) - c[i] ** 2 / 2,
                math.fsum(v * c[j] ** 2 for j, v in enumerate(row)) - c[i] ** 3 / 3, fourth]

    for i in (2, 3, 4, 5, 6, 7, 8):
        assert max(abs(d) for d in defects(i)) <= 64 * EPS * max(1.0, max(abs(v) for v in a[i])), (i, defects(i))
    assert abs(defects(1)[1]) > 1e-3 and abs(defects(1)[3]) > 1e-5  # stage 2: -1/50 and -1/2500


def test_the_dense_output_is_continuous_and_c1_at_both_ends():
    """b(0) = 0, b(1) = b (the step's end), b'(0) = e_1 and b'(1) = e_7 (F at both ends), to round-off of the
    rationals' nearest doubles; the two extra stages weigh nothing at theta = 1."""
    dense = tableaux.DORMAND_PRINCE_5_DENSE_5.dense
    b = tableaux.DORMAND_PRINCE_5_DENSE_5.b
    scale = max(abs(v) for row in dense for v in row)
    assert dense_weights_at(dense, 0.0) == [0.0] * 9
    assert max(abs(w - v) for w, v in zip(dense_weights_at(dense, 1.0), b)) <= 16 * EPS * scale
    slope_at_1 = [sum((k + 1) * v for k, v in enumerate(row)) for row in dense]
    assert [row[0] for row in dense] == [1.0] + [0.0] * 8
    assert max(abs(v - (1.0 if i == 6 else 0.0)) for i, v in enumerate(slope_at_1)) <= 32 * EPS * scale


def test_an_attempted_step_is_dormand_prince_5s_bit_for_bit():
    field = dn.fields.FunctionField(lambda t, x: torch.sin(3.0 * t * x) + x.roll(1, -1) ** 2, time_dependent=True)
    x = torch.randn(16, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    k0 = field.at(0.3, x)
    ks5, x5 = DENSE5.attempt(field, x, 0.137, 0.3, [k0])
    ks4, x4 = DEFAULT.attempt(field, x, 0.137, 0.3, [k0])
    assert torch.equal(x5, x4) and len(ks5) == len(ks4) == 7 and all(torch.equal(a, b) for a, b in zip(ks5, ks4))


def _local_errors(pair, theta, steps=(0.1, 0.05, 0.025)):
    """|x_dense(theta h) - x(theta h)| of one step from Kepler's periapsis (e = 0.5) for each h."""
    kepler = dn.systems.TwoBody(0.5)
    x0 = kepler.initial_state()
    errors = []
    for h in steps:
        ks, _ = pair.attempt(kepler, x0, h, 0.0, [kepler(x0)])
        x, evaluated = pair.interpolate(kepler, x0, h, 0.0, ks, theta)
        assert evaluated == pair.dense_stages - 7
        errors.append(float((x - kepler.solution(theta * h)).norm()))
    return errors


@pytest.mark.parametrize("theta", [0.3, 0.5, 0.8])
def test_the_local_error_at_interior_theta_falls_like_h6(theta):
    """Order 5: halving h divides the error by 2^6 (measured log2 ratios 6.05-6.67 for h = 0.1, 0.05, 0.025;
    errors 1.5e-6 down to 8e-11, far above round-off), and at h = 0.025 the default output's error is larger
    (measured 108x, 86x, 7.6x)."""
    errors = _local_errors(DENSE5, theta)
    slopes = [math.log2(a / b) for a, b in zip(errors, errors[1:])]
    assert min(slopes) >= 5.8, (errors, slopes)
    assert _local_errors(DEFAULT, theta)[-1] > 5 * errors[-1]


@pytest.mark.parametrize("theta", [0.3, 0.5])
def test_negative_control_the_default_outputs_local_error_falls_like_h5(theta):
    """The same measurement on the order-4 output: log2 ratios 4.90-5.03 (its h^5 term)."""
    errors = _local_errors(DEFAULT, theta)
    slopes = [math.log2(a / b) for a, b in zip(errors, errors[1:])]
    assert max(slopes) <= 5.2, (errors, slopes)
