"""The Cayley step x -> (I - h/2 S(x))^{-1} (I + h/2 S(x)) x (dynnets.methods.cayley): the dense solve, the
Woodbury solve of the low-rank skew fields against it, the h -> inf limit, exact gradients, the norm kept
for every step size a step accepts and refused where the inverse would underflow. The families' long
rollouts and deep flows under Cayley run in tests/fields/test_invariants.py."""

from __future__ import annotations

import pytest
import torch
from structure_cases import EPS, points, randomize

import dynnets as dn
from dynnets.errors import StepSizeError
from dynnets.methods.cayley import Cayley

F, M = dn.fields, dn.methods


def _sphere(dim=6, width=12, rank=2, scale=1.0, seed=0):
    return randomize(F.SpherePreserving(dim, width, rank=rank), scale, seed)


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


@pytest.mark.parametrize("rank", [None, 1, 2], ids=["dense-solve", "plane-rank1", "woodbury-rank2"])
@pytest.mark.parametrize("dtype, h", [(torch.float64, 1e3), (torch.float64, 1e20), (torch.float64, 1e300),
                                      (torch.float32, 1e7), (torch.float32, 1e30)])
def test_cayley_keeps_the_norm_for_every_step_size_it_accepts(dtype, h, rank):
    torch.manual_seed(0)
    flow = dn.Flow([dn.Step(F.SpherePreserving(4, 16, rank=rank), M.Cayley(), h) for _ in range(50)]).to(dtype)
    x = torch.randn(64, 4, dtype=dtype)
    with torch.no_grad():
        y = flow(x)
    drift = float(((y.double().norm(dim=1) / x.double().norm(dim=1)) - 1).abs().max())
    eps = torch.finfo(dtype).eps
    assert drift <= 4 * 50 * eps, drift  # C = 4, n = 50 steps
    # control: the same fields with explicit Euler leave the sphere
    ctrl = dn.Flow([dn.Step(s.field, M.Euler(), 0.5) for s in flow.steps]).to(dtype)
    with torch.no_grad():
        z = ctrl(x)
    assert float(((z.double().norm(dim=1) / x.double().norm(dim=1)) - 1).abs().max()) > 1e4 * 4 * 50 * eps


@pytest.mark.parametrize("rank", [None, 1, 2], ids=["dense-solve", "plane-rank1", "woodbury-rank2"])
def test_cayley_refuses_a_step_whose_inverse_underflows(rank):
    step = dn.Step(F.SpherePreserving(4, 8, rank=rank), M.Cayley(), 1e39)
    with pytest.raises(StepSizeError, match="h=1e\\+39 is too large for torch.float32"):
        step(torch.randn(2, 4))
    assert torch.isfinite(step.double()(torch.randn(2, 4, dtype=torch.float64))).all()
