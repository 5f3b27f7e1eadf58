"""Low-rank skew-product fields S(x) = U(x) V(x)^T - V(x) U(x)^T (``rank=k``): the field identities and the
quadratic invariant under an implicit symplectic method. Their Woodbury Cayley step is tested in
tests/methods/test_cayley.py, their long rollouts and deep flows in tests/fields/test_invariants.py and
tests/core/test_structure_properties.py."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from structure_cases import EPS, points, randomize, rollout_quadratic_drift

import dynnets as dn
from dynnets import structure as st

F, M = dn.fields, dn.methods


def _sphere(dim=6, width=12, rank=2, scale=1.0, seed=0):
    return randomize(F.SpherePreserving(dim, width, rank=rank), scale, seed)


def test_rank_option_builds_the_low_rank_families():
    """Constructors return the class they name, whatever the rank."""
    assert type(F.SpherePreserving(4, 8, rank=2)) is F.SpherePreserving
    assert type(F.MassPreserving(4, 8, "sigmoid", rank=1)) is F.MassPreserving
    assert F.SpherePreserving(4, 8, rank=2).skew_factors(torch.randn(3, 4)).shape == (3, 4, 4)
    assert F.SpherePreserving(4, 8).skew_factors(torch.randn(3, 4)) is None
    field = F.SpherePreserving(4, 8, rank=2, init_scale=0.3)
    for other in (copy.deepcopy(field), pickle.loads(pickle.dumps(field))):
        x = torch.randn(3, 4)
        assert type(other) is F.SpherePreserving and torch.equal(other(x), field(x))
    assert sum(p.numel() for p in field.parameters()) == sum(p.numel() for p in F.Dense(4, 8).parameters())


def test_sphere_field_is_s_of_x_times_x_with_s_exactly_skew():
    field = _sphere()
    x = points(32, 6, seed=1)
    with torch.no_grad():
        S, w, out = field.skew(x), field.skew_factors(x), field(x)
    assert torch.equal(S, -S.transpose(1, 2))
    u, v = w[:, :2].transpose(1, 2), w[:, 2:].transpose(1, 2)  # (batch, n, k)
    assert torch.allclose(S, u @ v.transpose(1, 2) - v @ u.transpose(1, 2), rtol=0, atol=20 * EPS * float(S.abs().max()))
    Sx = (S @ x.unsqueeze(-1)).squeeze(-1)
    assert float((out - Sx).abs().max()) <= 20 * EPS * float((S.abs() @ x.abs().unsqueeze(-1)).max())
    assert float(((out * x).sum(1).abs() / (out.norm(dim=1) * x.norm(dim=1))).max()) <= 20 * EPS
    assert torch.linalg.matrix_rank(S).max() <= 4  # rank <= 2k


def test_mass_field_has_zero_total_and_is_a_minus_a_transpose_times_ones():
    field = randomize(F.MassPreserving(6, 12, rank=3), 1.0, seed=2)
    x = points(64, 6, seed=2)
    with torch.no_grad():
        out, w = field(x), field.skew_factors(x)
    # 1^T F = sum_j (1^T u_j)(1^T v_j) - (1^T v_j)(1^T u_j): round-off of sums of 6 terms, times 2k = 6 products
    u, v = w[:, :3].transpose(1, 2), w[:, 3:].transpose(1, 2)
    A = u @ v.transpose(1, 2)
    ones = torch.ones(6, dtype=torch.float64)
    scale = float((u.abs().sum(1) * v.abs().sum(1)).sum(1).max())
    assert float(out.sum(1).abs().max()) <= 6 * 6 * EPS * scale
    assert float(out.abs().max()) > 1e-3  # not trivially zero
    assert torch.allclose(out, (A - A.transpose(1, 2)) @ ones, rtol=0, atol=20 * EPS * scale)
    # control: a Dense field of the same size has a total of order one
    dense = randomize(F.Dense(6, 12), 1.0, seed=2)
    with torch.no_grad():
        assert float(dense(x).sum(1).abs().max()) >= 1e6 * 6 * 6 * EPS * scale


@pytest.mark.slow
def test_low_rank_sphere_norm_under_implicit_midpoint():
    """QuadraticInvariant(I): a symplectic Runge-Kutta method keeps ||x||^2 (C = 1, n = 300 steps);
    control: Radau IIA, not symplectic, drifts."""
    step = dn.Step(_sphere(dim=5, width=8, rank=2, scale=0.5, seed=6), M.ImplicitMidpoint(), 0.5)
    assert st.QuadraticInvariant.norm() in step.guarantees
    x = points(4, 5, seed=6)
    eye = torch.eye(5, dtype=torch.float64) / 5 ** 0.5
    assert rollout_quadratic_drift(step, x, eye, 300) <= 300 * EPS
    control = dn.Step(step.field, M.RadauIIA(2), 0.5)
    assert rollout_quadratic_drift(control, x, eye, 100) >= 1e6 * 100 * EPS
