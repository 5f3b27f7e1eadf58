"""Implicit Runge-Kutta steps on stiff fields (issue 26): A-stable methods exist for exactly these problems,
so Newton's stop test must accept the round-off of a stiff solve (its correction against the stage scale,
dynnets.methods.newton) and still refuse an unconverged one.

Reference: on x' = lambda x a Runge-Kutta step is x -> R(h lambda) x with the stability function
R(z) = 1 + z b^T (I - z A)^-1 1 (Hairer, Wanner II, IV.3). The closed forms below are checked against that
formula on the tableaux, then evaluated in exact rational arithmetic, so the reference has no round-off.
Errors are relative to |x|: the step is computed as x + h sum_i b_i K_i, whose terms have the size of x, so
|x| eps is its round-off; for the L-stable Radau IIA |R(z)| ~ 3 / |z| and no step of that form can be
accurate relative to |R x| (for the Gauss methods |R| -> 1 and the two measures agree). Float64, C = 8.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

import dynnets as dn
from dynnets.errors import NotConvergedError

EPS = torch.finfo(torch.float64).eps
C = 8
#: h lambda from -1 to -1e8, three points a decade
Z_SWEEP = [-(10.0 ** (k / 3)) for k in range(25)]


def _midpoint(z):
    return (1 + z / 2) / (1 - z / 2)


def _gauss2(z):
    return (1 + z / 2 + z**2 / 12) / (1 - z / 2 + z**2 / 12)


def _radau3(z):
    """The (2, 3)-Pade approximant of exp: Radau IIA with 3 stages, order 5."""
    return (1 + 2 * z / 5 + z**2 / 20) / (1 - 3 * z / 5 + 3 * z**2 / 20 - z**3 / 60)


CASES = [(dn.methods.ImplicitMidpoint(), _midpoint), (dn.methods.GaussLegendre(2), _gauss2),
         (dn.methods.RadauIIA(3), _radau3)]
IDS = [m.name for m, _ in CASES]


def _exact(formula, z: float) -> float:
    """R(z) in exact rational arithmetic at the float64 value z, rounded once."""
    return float(formula(Fraction(z)))


@pytest.mark.parametrize("method, formula", CASES, ids=IDS)
def test_closed_forms_are_the_stability_functions_of_the_tableaux(method, formula):
    a = np.array(method.tableau.a)
    b = np.array(method.tableau.b)
    ones = np.ones(len(b))
    for z in (-0.5, -3.0, -40.0, 0.7, 1.5 + 2.0j):
        from_tableau = 1 + z * b @ np.linalg.solve(np.eye(len(b)) - z * a, ones)
        assert abs(from_tableau - formula(z)) <= 100 * EPS * max(1.0, abs(from_tableau)), (z, from_tableau)


@pytest.mark.parametrize("method, formula", CASES, ids=IDS)
def test_stiff_scalar_step_is_the_stability_function(method, formula):
    """The issue's case (lambda = -100, h = 1 raised NotConvergedError) and the sweep to h lambda = -1e8."""
    x = torch.randn(16, 1, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    for z in Z_SWEEP:
        field = dn.fields.Linear(torch.tensor([[z]], dtype=torch.float64))
        y = dn.Step(field, method, 1.0)(x)
        error = float(((y - _exact(formula, z) * x).abs() / x.abs()).max())
        assert error <= C * EPS, (z, error / EPS)


@pytest.mark.parametrize("method, formula", CASES, ids=IDS)
def test_stiff_diagonal_system_each_component_is_its_stability_function(method, formula):
    """x' = diag(-1, -1e6) x with h from 1e-6 to 100 (h lambda_2 from -1 to -1e8): the soft component is not
    hidden under the stiff one's round-off (Newton's correction is measured per component)."""
    lam = (-1.0, -1e6)
    field = dn.fields.Linear(torch.diag(torch.tensor(lam, dtype=torch.float64)))
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for h in [10.0 ** (k / 3) for k in range(-18, 7)]:
        y = dn.Step(field, method, h)(x)
        reference = torch.tensor([_exact(formula, h * v) for v in lam], dtype=torch.float64) * x
        error = float(((y - reference).abs() / x.abs().amax(dim=1, keepdim=True)).max())
        assert error <= C * EPS, (h, error / EPS)


@pytest.mark.parametrize("method, formula", CASES, ids=IDS)
def test_gradient_through_a_stiff_solve_is_the_stability_function(method, formula):
    """dy/dx = R(z) by the implicit-function-theorem backward (ift), to C eps (relative to 1: dy/dx is
    formed as 1 + h b^T dK/dx)."""
    for z in (-1e2, -1e5, -1e8):
        x = torch.randn(4, 1, dtype=torch.float64, requires_grad=True)
        y = dn.Step(dn.fields.Linear(torch.tensor([[z]], dtype=torch.float64)), method, 1.0)(x)
        (grad,) = torch.autograd.grad(y.sum(), x)
        assert float((grad - _exact(formula, z)).abs().max()) <= C * EPS, z


def _cubic_midpoint(x: float, h: float, k: float) -> float:
    """The implicit midpoint step of x' = -k x^3: with u = (x + y) / 2, k h u^3 + 2 u - 2 x = 0 has one real
    root (the cubic is increasing); y = 2 u - x. Bisection in exact rational arithmetic, rounded once."""
    lo, hi = Fraction(min(0.0, x)), Fraction(max(0.0, x))
    xf, hk = Fraction(x), Fraction(h) * Fraction(k)
    for _ in range(120):
        mid = (lo + hi) / 2
        if hk * mid**3 + 2 * mid - 2 * xf > 0:
            hi = mid
        else:
            lo = mid
    return float(2 * lo - xf)


def test_stiff_nonlinear_step_to_round_off_and_refused_when_unconverged():
    """x' = -1e6 x^3 (h DF = -3e6 x^2 at h = 1): the implicit midpoint step agrees with the exact root of
    its cubic stage equation to C eps; with max_iterations=2, Newton's iterate is not at round-off (its
    correction is far above the tolerance) and the step raises instead of returning it."""
    field = dn.fields.FunctionField(lambda x: -1e6 * x**3, 1)
    x = torch.tensor([[1.0], [-0.3], [2.5]], dtype=torch.float64)
    y = dn.Step(field, dn.methods.ImplicitMidpoint(), 1.0)(x)
    reference = torch.tensor([[_cubic_midpoint(float(v), 1.0, 1e6)] for v in x[:, 0]], dtype=torch.float64)
    assert float(((y - reference).abs() / x.abs()).max()) <= C * EPS
    with pytest.raises(NotConvergedError, match=r"h=1 .*residual .* > tolerance"):
        dn.Step(field, dn.methods.ImplicitMidpoint(max_iterations=2), 1.0)(x)
