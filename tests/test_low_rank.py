"""Low-rank skew-product fields S(x) = U(x) V(x)^T - V(x) U(x)^T (``rank=k``) and the Woodbury Cayley step:
the field identities, the Woodbury step against the dense n x n solve of the same S(x), its h -> inf
limit, exact gradients, and the quadratic invariant under an implicit symplectic method. The long
rollouts and deep flows of the guarantee table run on these variants in test_structure_invariants.py,
test_structure_properties.py and test_edges.py."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from structure_cases import EPS, points, randomize, rollout_quadratic_drift

import dynnets as dn
from dynnets import structure as st
from dynnets.methods.cayley import Cayley

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


@pytest.mark.parametrize("h", [0.5, 5.0, 1e3])
@pytest.mark.parametrize("rank", [1, 2, 4])
def test_woodbury_step_equals_the_dense_solve_of_the_same_skew_matrix(rank, h):
    """x + h W (I - h/2 J G)^{-1} J W^T x against (I - h/2 S)^{-1} (I + h/2 S) x with S = skew(x): equal to
    the dense solve's accuracy, about cond(I - h S / 2) eps (C = 10), while the step moves x by O(1)."""
    field = _sphere(dim=8, width=8 * rank, rank=rank, seed=rank)
    x = points(16, 8, seed=3)
    with torch.no_grad():
        woodbury = dn.Step(field, M.Cayley(), h)(x)
        S = field.skew(x)
        eye = torch.eye(8, dtype=torch.float64)
        dense = torch.linalg.solve(eye - h / 2 * S, x.unsqueeze(-1) + h / 2 * S @ x.unsqueeze(-1)).squeeze(-1)
        cond = torch.linalg.cond(eye - h / 2 * S).max()
    err = float(((woodbury - dense).norm(dim=1) / x.norm(dim=1)).max())
    assert err <= 10 * 8 * EPS * float(cond)
    assert float(((woodbury - x).norm(dim=1) / x.norm(dim=1)).mean()) >= 0.1


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("h", [1e20, 1e300])
def test_woodbury_reaches_the_infinite_step_limit(h, rank):
    """cay(hS) -> I - 2 P_range(S) as h -> inf (eigenvalues (1 + i h l / 2) / (1 - i h l / 2) -> -1 on the
    range, 1 on the kernel). The 2k x 2k system stays well conditioned there, so the Woodbury step reaches
    the limit to round-off (rank 1: Cramer's rule); the dense n x n solve, with a nearly singular e I - S,
    is off by O(1) or not finite."""
    field = _sphere(dim=6, width=12, rank=rank, seed=4)
    x = points(8, 6, seed=4)
    with torch.no_grad():
        S = field.skew(x)
        basis = torch.linalg.svd(S).U[:, :, : 2 * rank]  # S has rank 2k
        limit = x - 2 * (basis @ (basis.transpose(1, 2) @ x.unsqueeze(-1))).squeeze(-1)
        woodbury = dn.Step(field, M.Cayley(), h)(x)
        dense = Cayley._dense(S, x, 2.0 / h, 1.0)
    assert float(((woodbury - limit).norm(dim=1) / x.norm(dim=1)).max()) <= 10 * 6 * EPS
    assert not float(((dense - limit).norm(dim=1) / x.norm(dim=1)).max()) < 1e-3  # O(1) off, or NaN


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("h", [0.3, 5.0])
def test_woodbury_cayley_gradients_are_exact(h, rank):
    field = _sphere(dim=5, width=8, rank=rank, scale=0.5, seed=5)
    x = points(3, 5, seed=5).requires_grad_(True)
    step = dn.Step(field, M.Cayley(), h)
    assert torch.autograd.gradcheck(lambda x, *p: step(x), (x, *field.parameters()))
    learned = dn.Step(field, M.Cayley(), min(h, 0.5), learn_h=True).double()
    assert torch.autograd.gradcheck(lambda x, rho: learned(x), (x, learned.h_raw))
    # and through torch.func (dn.testing's Jacobians): the Jacobian of the step against autograd's rows
    J = dn.testing.jacobian(step, x.detach())
    row = torch.autograd.grad(step(x)[0, 2], x)[0][0]
    assert torch.allclose(J[0, 2], row, rtol=0, atol=1e-13)


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
