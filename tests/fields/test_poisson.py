"""LiePoisson (x' = x x grad H(x), so(3)*): its Casimir |x|^2 kept to round-off by Cayley and Gauss-Legendre,
drifting under an explicit method (negative control); the field's structure exactly as stated."""

from __future__ import annotations

import pytest
import torch
from structure_cases import EPS, mean_move, points, randomize, rollout_norm_drift

import dynnets as dn
from dynnets.errors import ConfigError, ShapeError
from dynnets.structure import QuadraticInvariant

F, M = dn.fields, dn.methods
N = 100


def _field(seed: int = 0):
    return randomize(F.LiePoisson(8), 1.0, seed)


def test_skew_exact_and_tangent_to_spheres_and_energy_levels():
    field, x = _field(), points(16, 3, seed=1)
    with torch.no_grad():
        s, y = field.skew(x), field(x)
    assert torch.equal(s, -s.mT)
    torch.testing.assert_close((s @ x.unsqueeze(-1)).squeeze(-1), y, rtol=0, atol=8 * EPS * float(y.abs().max()))
    scale = float((x.norm(dim=1) * y.norm(dim=1)).max())
    assert float((x * y).sum(1).abs().max()) <= 8 * EPS * scale  # d|x|^2/dt = 0
    xg = x.clone().requires_grad_(True)
    grad = torch.autograd.grad(field.hamiltonian(xg).sum(), xg)[0]
    torch.testing.assert_close(field.energy_gradient(x), grad, rtol=1e-13, atol=1e-14)
    assert float((grad * y).sum(1).abs().max()) <= 8 * EPS * float((grad.norm(dim=1) * y.norm(dim=1)).max())


@pytest.mark.parametrize("method", [M.Cayley(), pytest.param(M.GaussLegendre(2), marks=pytest.mark.slow)],
                         ids=lambda m: m.name)
def test_casimir_kept_to_round_off(method):
    step = dn.Step(_field(), method, 0.1)
    assert QuadraticInvariant.norm() in step.guarantees
    x = points(4, 3, seed=2)
    assert mean_move(dn.Flow.repeat(step, N), x) >= 0.5  # far from the identity
    assert rollout_norm_drift(step, x, N) <= 4 * N * EPS


def test_casimir_drifts_under_rk4_negative_control():
    step = dn.Step(_field(), M.RK4(), 0.1)
    assert QuadraticInvariant.norm() not in step.guarantees
    assert rollout_norm_drift(step, points(4, 3, seed=2), N) >= 1e4 * 4 * N * EPS


@pytest.mark.slow
def test_learns_a_rigid_body_and_keeps_its_casimir():
    """Fit one Cayley step to the time-0.1 map of a rigid body (GaussLegendre(3), 10 substeps): the loss falls
    and the trained step still keeps |x| to round-off."""
    torch.manual_seed(0)
    body = dn.Step(dn.systems.RigidBody(), M.GaussLegendre(3), 0.01)
    x = torch.randn(64, 3, dtype=torch.float64)
    with torch.no_grad():
        y = dn.Flow.repeat(body, 10)(x)
    step = dn.Step(F.LiePoisson(16).double(), M.GaussLegendre(1), 0.1)
    with torch.no_grad():
        before = float(((step(x) - y) ** 2).mean())
    result = dn.train.fit(step, lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(), [(x, y)], steps=150, lr=2e-2,
                          progress=False)
    assert result.final_loss <= 0.05 * before
    assert rollout_norm_drift(step, x, 50) <= 4 * 50 * EPS


def test_bad_inputs_are_typed_errors():
    with pytest.raises(ConfigError):
        F.LiePoisson(0)
    with pytest.raises(ConfigError):
        F.LiePoisson(4, potential="nope")
    with pytest.raises(ShapeError):
        F.LiePoisson(4)(torch.randn(2, 4))
