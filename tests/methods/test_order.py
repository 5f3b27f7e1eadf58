"""Observed order of accuracy on a linear ODE with a known solution x(T) = exp(T M) x0."""

import math

import numpy as np
import pytest
import torch

import dynnets as dn
from dynnets.methods import ExplicitRK
from dynnets.methods.tableaux import EXPLICIT_MIDPOINT, SSPRK3


def _problem():
    # a damped rotation: non-normal enough to excite every error term
    M = torch.tensor([[-0.3, 2.0, 0.1], [-2.0, -0.1, 0.5], [0.0, -0.4, -0.2]], dtype=torch.float64)
    x0 = torch.tensor([[1.0, -0.5, 0.25]], dtype=torch.float64)
    T = 1.0
    exact = x0 @ torch.linalg.matrix_exp(T * M).T
    return M, x0, T, exact


@pytest.mark.parametrize(
    "method, order",
    [(dn.methods.Euler(), 1), (dn.methods.Heun(), 2), (ExplicitRK(EXPLICIT_MIDPOINT), 2),
     (ExplicitRK(SSPRK3), 3), (dn.methods.RK4(), 4)],
    ids=["Euler", "Heun", "Midpoint", "SSPRK3", "RK4"],
)
def test_observed_order_matches_nominal(method, order):
    M, x0, T, exact = _problem()
    field = dn.fields.Linear(M)
    ns = [16, 32, 64, 128]
    errors = []
    for n in ns:
        flow = dn.Flow.repeat(dn.Step(field, method, T / n), n)
        errors.append(float((flow(x0) - exact).norm()))
    slope = -np.polyfit(np.log(ns), np.log(errors), 1)[0]
    assert abs(slope - order) <= 0.1, (slope, errors)
    assert method.order == order


def test_euler_step_is_exactly_x_plus_h_f():
    field = dn.fields.Dense(5, 7).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    step = dn.Step(field, dn.methods.Euler(), 0.3)
    assert torch.equal(step(x), x + 0.3 * field(x))


def test_rk4_step_matches_textbook():
    field = dn.fields.Dense(3, 6).double()
    x = torch.randn(2, 3, dtype=torch.float64)
    h = 0.2
    k1 = field(x)
    k2 = field(x + h / 2 * k1)
    k3 = field(x + h / 2 * k2)
    k4 = field(x + h * k3)
    expected = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    got = dn.Step(field, dn.methods.RK4(), h)(x)
    assert torch.allclose(got, expected, rtol=0, atol=8 * torch.finfo(torch.float64).eps * math.sqrt(3))
