"""Finite differences for u_t = u_xx as dynnets flows: stability refusal, exactness of the scheme,
convergence orders (FTCS 2 in dx at fixed dt/dx^2, 4 at dt/dx^2 = 1/6; Crank-Nicolson 2 in dt),
Dirichlet data and general initial data."""

import itertools
import math

import pytest
import torch

import dynnets as dn
from dynnets.errors import IncompatibleFieldError, ShapeError, StepSizeError
from dynnets.systems import HeatField1D, UniformGrid1D, sine_mode_solution

EPS = torch.finfo(torch.float64).eps


def sine(x):
    return torch.sin(math.pi * x)


def solve_heat(f, u0, times, dt, method=None):
    """Nodal values at ``times`` from the initial data u0 by ``dn.solve`` with fixed steps dt (default Euler:
    FTCS)."""
    u = f.grid.sample(u0).unsqueeze(0)
    sol = dn.solve(f, u, [0.0, *times], method or dn.methods.Euler(), h=dt)
    return {t: f.with_boundary(sol.x[j + 1])[0] for j, t in enumerate(times)}


def ftcs(f, dt, n):
    return dn.Flow.repeat(dn.Step(f, dn.methods.Euler(), dt), n)


def crank_nicolson(f, dt, n):
    return dn.Flow.repeat(dn.Step(f, dn.methods.CrankNicolson(), dt), n)


def field(dx, **kw):
    return HeatField1D(UniformGrid1D(0.0, 1.0, round(1.0 / dx)), **kw)


def rel_error(dx, dt, t, method=None):
    """max over interior nodes of |u_true - u_fd| / |u_true| (the seed's eq. 25)."""
    f = field(dx)
    u = solve_heat(f, sine, [t], dt, method)[t]
    x = f.grid.nodes()
    exact = sine_mode_solution(x, t)
    return float(((u - exact).abs() / exact.abs())[1:-1].max())


def orders(errors):
    return [math.log2(a / b) for a, b in itertools.pairwise(errors)]


# --- stability -------------------------------------------------------------------------------

def test_ftcs_refuses_dt_over_dx2_above_half_with_named_values():
    f = field(0.01)
    with pytest.raises(StepSizeError) as info:
        dn.Step(f, dn.methods.Euler(), 2e-4)  # the seed's text: dt = 2e-4 with dx = 1/100, ratio 2
    msg = str(info.value)
    for needed in ("dt=0.0002", "dx=0.01", "= 2 ", "1/2"):
        assert needed in msg, (needed, msg)
    with pytest.raises(StepSizeError):
        ftcs(f, 0.51e-4, 10)
    with pytest.raises(StepSizeError):
        solve_heat(f, sine, [0.1], 2e-4)
    ftcs(f, 0.5e-4, 10)  # exactly at the limit is allowed
    with pytest.raises(StepSizeError):  # a learned step size is checked at its upper bound h_max
        dn.Step(f, dn.methods.Euler(), 0.4e-4, learn_h=True, h_max=0.6e-4)


def test_stability_limits_of_other_explicit_methods_come_from_their_tableaux():
    f = field(0.01)
    assert dn.methods.Euler().real_stability_interval == 2.0
    assert dn.methods.Heun().real_stability_interval == pytest.approx(2.0, abs=1e-12)
    # RK4: the real root of 1 - x + x^2/2 - x^3/6 + x^4/24 = 1, x = 2.785293563405282 (HW II, IV.2)
    assert dn.methods.RK4().real_stability_interval == pytest.approx(2.785293563405282, rel=1e-12)
    with pytest.raises(StepSizeError):
        dn.Step(f, dn.methods.Heun(), 0.51e-4)
    dn.Step(f, dn.methods.RK4(), 0.69e-4)  # beyond Euler's limit, inside RK4's 0.6963
    with pytest.raises(StepSizeError, match="0.696"):
        dn.Step(f, dn.methods.RK4(), 0.70e-4)


def test_refused_step_really_is_unstable_and_accepted_one_is_not():
    """The rule is not arbitrary: just above the limit FTCS blows up, at the limit it does not."""
    f = field(0.05)
    u0 = f.grid.sample(lambda x: x * (1 - x)).unsqueeze(0)  # excites the highest mode too
    stable = dn.Flow.repeat(dn.Step(f, dn.methods.Euler(), 0.5 * 0.05**2), 400)(u0)
    M, _ = f.affine_parts()
    unstable = u0.clone()
    for _ in range(400):  # the same scheme with a 10% larger step, bypassing the check
        unstable = unstable + 0.55 * 0.05**2 * (unstable @ M.T)
    assert stable.abs().max() <= u0.abs().max()
    assert unstable.abs().max() > 1e3 * u0.abs().max()


# --- the scheme is exactly FTCS -------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("dx, ratio", [(1 / 100, 0.4), (1 / 100, 1 / 6), (1 / 10, 0.4)])
def test_ftcs_matches_its_closed_form_amplification_factor(dx, ratio):
    """sin(pi x) is an eigenvector of the discrete Laplacian, so FTCS gives exactly
    g^n sin(pi x_i), g = 1 - 4 r sin^2(pi dx / 2); the relative error is constant in x."""
    dt = ratio * dx * dx
    for t in (0.1, 0.3):
        n = round(t / dt)
        g = 1.0 - 4.0 * ratio * math.sin(math.pi * dx / 2) ** 2
        expected = abs(g**n * math.exp(math.pi**2 * t) - 1.0)
        measured = rel_error(dx, dt, t)
        assert measured == pytest.approx(expected, rel=1e-6)


@pytest.mark.slow
def test_issue_numbers_reproduced_within_five_percent():
    assert rel_error(0.01, 0.4e-4, 0.1) == pytest.approx(1.1e-4, rel=0.05)
    assert rel_error(0.01, 0.4e-4, 0.3) == pytest.approx(3.4e-4, rel=0.05)
    assert rel_error(0.01, 1e-4 / 6, 0.1) == pytest.approx(1.8e-9, rel=0.05)


# --- convergence orders ----------------------------------------------------------------------

def test_ftcs_is_second_order_in_dx_at_fixed_ratio():
    errors = [rel_error(dx, 0.4 * dx * dx, 0.1) for dx in (1 / 10, 1 / 20, 1 / 40, 1 / 80)]
    for p in orders(errors):
        assert abs(p - 2.0) <= 0.1, (errors, orders(errors))


def test_ftcs_is_fourth_order_at_ratio_one_sixth():
    errors = [rel_error(dx, dx * dx / 6, 0.1) for dx in (1 / 10, 1 / 20, 1 / 40)]
    for p in orders(errors):
        assert abs(p - 4.0) <= 0.1, (errors, orders(errors))
    # negative control: at ratio 0.4 the same grids are only second order
    assert orders([rel_error(dx, 0.4 * dx * dx, 0.1) for dx in (1 / 10, 1 / 20)])[0] < 2.2


def test_crank_nicolson_is_second_order_in_dt_and_exact_scheme():
    """Against the semi-discrete solution exp(lambda_1 t) sin(pi x_i), lambda_1 = -(4/dx^2) sin^2(pi dx/2),
    CN's error is purely temporal: amplification (1 + z/2)/(1 - z/2), z = dt lambda_1."""
    dx, t = 1 / 50, 0.2
    f = field(dx)
    x = f.grid.nodes()
    lam = -4.0 / dx**2 * math.sin(math.pi * dx / 2) ** 2
    errors = []
    for dt in (0.02, 0.01, 0.005, 0.0025):
        u = solve_heat(f, sine, [t], dt, dn.methods.CrankNicolson())[t]
        n = round(t / dt)
        z = dt * lam
        closed = ((1 + z / 2) / (1 - z / 2)) ** n * torch.sin(math.pi * x)
        assert (u - closed).abs().max() <= 100 * n * EPS
        errors.append(float((u - math.exp(lam * t) * torch.sin(math.pi * x)).abs().max()))
    for p in orders(errors):
        assert abs(p - 2.0) <= 0.1, errors


def test_crank_nicolson_takes_steps_ftcs_refuses_and_stays_bounded():
    f = field(0.01)
    dt = 100 * 0.01**2  # ratio 100
    with pytest.raises(StepSizeError):
        ftcs(f, dt, 1)
    u0 = f.grid.sample(lambda x: x * (1 - x) + 0.1 * torch.sin(40 * math.pi * x)).unsqueeze(0)
    u = crank_nicolson(f, dt, 50)(u0)
    assert torch.isfinite(u).all() and u.abs().max() <= u0.abs().max()


def test_crank_nicolson_refuses_a_field_without_the_affine_trait():
    with pytest.raises(IncompatibleFieldError, match="Affine"):
        dn.Step(dn.fields.Dense(4, 8), dn.methods.CrankNicolson(), 0.1)


# --- Dirichlet data, the affine form, initial data -----------------------------------------

def test_field_equals_its_affine_parts_and_linear_profile_is_steady():
    f = field(1 / 20, alpha=0.7, left=1.0, right=-2.0)
    u = torch.randn(5, f.dim, dtype=torch.float64)
    M, c = f.affine_parts()
    assert (f(u) - (u @ M.T + c)).abs().max() <= 8 * EPS * (u.abs().max() + 2) / f.dx**2
    x = f.grid.interior()
    steady = (1.0 - 3.0 * x).unsqueeze(0)  # linear between the Dirichlet values
    for flow in (ftcs(f, 0.4 * f.dx**2 / 0.7, 200), crank_nicolson(f, 0.01, 200)):
        assert (flow(steady) - steady).abs().max() <= 200 * 16 * EPS
    assert (f.with_boundary(steady)[0, [0, -1]] == torch.tensor([1.0, -2.0], dtype=torch.float64)).all()


def test_general_initial_data_as_callable_or_array():
    dx, dt, t = 1 / 40, 0.4 / 40**2, 0.05
    f = field(dx)
    x = f.grid.nodes()

    def u0(x):
        return torch.sin(math.pi * x) + 0.5 * torch.sin(3 * math.pi * x)

    by_callable = solve_heat(f, u0, [t], dt)[t]
    by_full_array = solve_heat(f, u0(x).numpy(), [t], dt)[t]
    by_interior_list = solve_heat(f, u0(x)[1:-1].tolist(), [t], dt)[t]
    assert torch.equal(by_callable, by_full_array) and torch.equal(by_callable, by_interior_list)
    exact = sine_mode_solution(x, t) + 0.5 * sine_mode_solution(x, t, k=3)
    assert (by_callable - exact).abs().max() < 5e-3  # O(dx^2) with the k = 3 mode
    with pytest.raises(ShapeError, match="length"):
        solve_heat(f, torch.zeros(17), [t], dt)
    with pytest.raises(ValueError, match="finite"):
        solve_heat(f, lambda x: x / 0.0 * 0.0, [t], dt)
