"""The trial-function solver: exact data for any parameters, exact derivatives (Taylor mode equals
reverse mode to round-off), and a short fit that reduces the residual."""

import math

import pytest
import torch

import dynnets as dn
from dynnets.applications.trial.heat import DYNNETS_RECIPE, PAPER_RECIPE, build_heat_trial, heat_sine_trial
from dynnets.applications.trial.network import (
    LinearPDE,
    ProjectedLoss,
    TrialNetwork,
    TrialSolution,
    derivative,
    grid_points,
    linear_parts,
    residual_function,
    residual_loss,
)
from dynnets.errors import ConfigError
from dynnets.train import Phase, fit

EPS = torch.finfo(torch.float64).eps


def untrained(seed, **kw):
    torch.manual_seed(seed)
    return TrialNetwork(2, 16, 3, **kw).double()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_boundary_and_initial_data_hold_exactly_for_an_untrained_network(seed):
    sol, _ = heat_sine_trial(untrained(seed))
    s = torch.linspace(0, 1, 257, dtype=torch.float64)
    zeros, ones = torch.zeros_like(s), torch.ones_like(s)
    with torch.no_grad():
        left = sol(torch.stack([zeros, s], 1))
        right = sol(torch.stack([ones, s], 1))
        initial = sol(torch.stack([s, zeros], 1))
        inside = sol(torch.stack([s, 0.5 * ones], 1))
    # u(0, t) = 0 exactly; u(1, t) = (1 - t) sin(pi) = O(eps); u(x, 0) = sin(pi x) exactly
    assert left.abs().max() == 0.0
    assert right.abs().max() <= 2 * EPS
    assert (initial - torch.sin(math.pi * s)).abs().max() == 0.0
    # negative control: the same network without the distance factor misses the data by O(1)
    bare = TrialSolution(sol.network, sol.particular, lambda z: torch.ones_like(z[:, 0]))
    with torch.no_grad():
        assert bare(torch.stack([zeros, s], 1)).abs().max() > 1e6 * 2 * EPS
    assert inside.abs().max() > 0  # and the network does contribute inside


def test_trial_network_is_a_dynnets_flow_of_euler_dense_steps():
    net = untrained(0)
    assert isinstance(net.flow, dn.Flow) and len(net.flow) == 3
    assert all(isinstance(s.field, dn.fields.Dense) and isinstance(s.method, dn.methods.Euler)
               for s in net.flow.steps)
    assert sum(p.numel() for p in net.parameters()) == 2 * 16 + 16 + 3 * (2 * 16 * 16 + 16) + 17


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "sin", "softplus"])
def test_taylor_mode_residual_equals_reverse_mode_residual(activation):
    sol, pde = heat_sine_trial(untrained(3, activation=activation, output_scale=3.0))
    z = grid_points((9, 7), (0, 0), (1, 1))
    fast = residual_function(sol, pde, z)()
    slow = residual_function(sol, pde, z, fast=False)()
    assert (fast - slow).abs().max() <= 64 * EPS * slow.abs().max()
    # gradients with respect to the parameters agree too
    g_fast = torch.autograd.grad(fast.square().mean(), list(sol.parameters()))
    g_slow = torch.autograd.grad(slow.square().mean(), list(sol.parameters()))
    for a, b in zip(g_fast, g_slow):
        assert (a - b).abs().max() <= 1e3 * EPS * (b.abs().max() + 1)


def test_derivative_of_a_known_function():
    z = torch.rand(50, 2, dtype=torch.float64)

    def f(z):
        return torch.sin(3 * z[:, 0]) * z[:, 1] ** 3

    x, t = z[:, 0], z[:, 1]
    assert torch.allclose(derivative(f, z, (0, 0)), -9 * torch.sin(3 * x) * t**3, rtol=0, atol=1e-13)
    assert torch.allclose(derivative(f, z, (1,)), 3 * torch.sin(3 * x) * t**2, rtol=0, atol=1e-13)
    assert torch.allclose(derivative(f, z, (0, 1)), 9 * torch.cos(3 * x) * t**2, rtol=0, atol=1e-13)


def test_linear_pde_residual_vanishes_on_the_exact_solution():
    pde = LinearPDE({"t": 1.0, "xx": -1.0}, coords="xt")
    z = grid_points((11, 11), (0, 0), (1, 1))

    def exact(z):
        return torch.sin(math.pi * z[:, 0]) * torch.exp(-math.pi**2 * z[:, 1])

    assert pde.residual(exact, z).abs().max() <= 64 * EPS * math.pi**2
    with pytest.raises(ConfigError, match="not in coords"):
        LinearPDE({"yy": 1.0}, coords="xt")


@pytest.mark.slow
def test_a_short_fit_reduces_the_residual_and_the_error():
    sol, pde, points = build_heat_trial(DYNNETS_RECIPE.__class__(**{**vars(DYNNETS_RECIPE), "width": 12}), 0)
    before = residual_function(sol, pde, points)().square().mean().item()
    result = fit(sol, residual_loss(sol, pde, points),
                 phases=[Phase("adam", 50, lr=1e-2), Phase("lbfgs", 6, options=dict(max_iter=10))], keep_best=True,
                 progress=False)
    after = residual_function(sol, pde, points)().square().mean().item()
    assert after < 1e-3 * before
    assert result.end_loss == pytest.approx(after, rel=1e-12)
    assert result.losses[0] == pytest.approx(before, rel=1e-12)


def test_projected_loss_is_the_residual_at_the_least_squares_projection():
    """Variable projection: r = r0 + M w is the residual (to round-off) for the network's own projection w,
    the loss is its minimum over w, set_projection() writes that minimiser, and the gradient in the hidden
    parameters is the gradient of the minimum (envelope theorem; checked by a central difference)."""
    sol, pde, points = build_heat_trial(DYNNETS_RECIPE.__class__(**{**vars(DYNNETS_RECIPE), "width": 8}), 0)
    net = sol.network
    M, r0 = linear_parts(sol, pde, points)()
    w = net.output_scale * torch.cat([net.project.weight[0], net.project.bias]).detach()
    r = residual_function(sol, pde, points)().detach()
    scale = float((r0.abs() + (M * w).abs().sum(1)).max())  # the size of the summed terms
    assert float((r0 + M.detach() @ w - r).abs().max()) <= 10 * M.shape[1] * EPS * scale
    loss = ProjectedLoss(sol, pde, points)
    best = float(loss(sol, None))
    assert best < 0.5 * float(r.square().mean())  # the untrained projection is not the best one
    loss.set_projection()
    assert float(residual_function(sol, pde, points)().square().mean()) == pytest.approx(best, rel=1e-9)
    with torch.no_grad():  # negative control: any other projection is worse
        net.project.bias += 0.1
    assert float(residual_function(sol, pde, points)().square().mean()) > best * (1 + 1e-3)
    p = net.lift.weight
    grad = torch.autograd.grad(loss(sol, None), p)[0][0, 0]
    e = 1e-6
    with torch.no_grad():
        p[0, 0] += e
        up = float(loss(sol, None))
        p[0, 0] -= 2 * e
        down = float(loss(sol, None))
    assert float(grad) == pytest.approx((up - down) / (2 * e), rel=1e-4)


def test_paper_recipe_builds_the_seeds_network():
    sol, _, points = build_heat_trial(PAPER_RECIPE, 0)
    assert points.dtype == torch.float32 and points.shape == (400, 2)
    assert float(points.min()) == 0.0 and float(points.max()) == 1.0  # linspace with the faces
    sizes = [tuple(p.shape) for p in sol.network.parameters()]
    assert sizes == [(50, 2), (50,), (20, 50), (20,), (1, 20), (1,)]
