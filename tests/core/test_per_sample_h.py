"""A per-sample step size: ``step(x, h=h)`` / ``flow(x, h=h)`` with h of shape (batch,) runs each row with its
own h; the result equals the scalar-h runs row by row, and each row's map keeps the step's guarantee
(symplectic to round-off in float64, with a non-symplectic negative control); bad h is refused with typed
errors."""

from __future__ import annotations

import pytest
import torch
from structure_cases import EPS, max_jacobian_norm, points, randomize

import dynnets as dn
from dynnets.errors import ConfigError, DtypeError, ShapeError

DIM = 2
HS = torch.tensor([0.05, 0.3, 0.7, 1.3], dtype=torch.float64)


def _flow(method, tied: bool):
    torch.manual_seed(0)
    if tied:
        return dn.Flow.repeat(dn.Step(randomize(dn.fields.Hamiltonian(DIM, 6), 0.8, seed=1), method, 0.1), 5)
    net = dn.networks.sympnet(DIM, 4, linear=2, width=5, h=0.1, method=method).double()
    for k, step in enumerate(net.layers):
        randomize(step.field, 0.8, seed=10 + k)
    return net


def _with_h(flow, h: float):
    """The same flow (same parameters) with every step's fixed h replaced by h."""
    return dn.Flow([dn.Step(s.field, s.method, h) for s in flow])


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("method", [dn.methods.SymplecticEuler(), dn.methods.StormerVerlet()])
def test_each_row_is_the_flow_of_its_own_h(method, tied):
    flow = _flow(method, tied)
    x = points(len(HS), 2 * DIM, seed=2)
    y = flow(x, h=HS)
    for i, h in enumerate(HS.tolist()):
        torch.testing.assert_close(y[i:i + 1], _with_h(flow, h)(x[i:i + 1]), rtol=0, atol=0)
    assert torch.equal(flow(x, h=torch.tensor(0.3, dtype=torch.float64)), _with_h(flow, 0.3)(x))


@pytest.mark.parametrize("method", [dn.methods.SymplecticEuler(), dn.methods.StormerVerlet()])
def test_each_rows_map_is_symplectic(method):
    flow = _flow(method, tied=False)
    x = points(len(HS), 2 * DIM, seed=3)
    for i in range(len(HS)):
        row, h = x[i:i + 1], HS[i:i + 1]

        def f(z, h=h):
            return flow(z, h=h)

        with torch.no_grad():
            assert float((f(row) - row).norm()) > 0.1
        # round-off in J^T Omega J grows with ||J||^2 (as in test_implicit_invariants)
        scale = max(1.0, max_jacobian_norm(f, row) ** 2)
        assert dn.testing.symplecticity_defect(f, row) <= 10 * len(flow) * 2 * DIM * EPS * scale
    # negative control: the same fields, RK4 with each row's h, are far from symplectic
    h = float(HS[-1])
    rk4 = dn.Flow([dn.Step(s.field, dn.methods.RK4(), h) for s in flow])
    assert dn.testing.symplecticity_defect(rk4, x) >= 1e6 * 10 * len(flow) * 2 * DIM * EPS


def test_gradients_reach_the_parameters_and_h():
    flow = _flow(dn.methods.StormerVerlet(), tied=False)
    x = points(len(HS), 2 * DIM, seed=4)
    h = HS.clone().requires_grad_(True)
    flow(x, h=h).square().sum().backward()
    assert h.grad is not None and bool((h.grad != 0).all())
    assert all(p.grad is not None for p in flow.parameters())


def _bad_cases():
    x = points(4, 2 * DIM, seed=5)
    return [
        (0.1, DtypeError), (HS.float(), DtypeError), (HS[:3], ShapeError), (HS.reshape(2, 2), ShapeError),
        (torch.arange(4), DtypeError),
    ], x


def test_bad_h_is_refused_with_typed_errors():
    flow = _flow(dn.methods.StormerVerlet(), tied=False)
    cases, x = _bad_cases()
    for h, error in cases:
        with pytest.raises(error):
            flow(x, h=h)


def test_steps_that_cannot_take_a_per_sample_h_refuse_it():
    x = points(4, 2 * DIM, seed=6)
    field = dn.fields.Hamiltonian(DIM, 4).double()
    for step in (dn.Step(field, dn.methods.RK4(), 0.1),
                 dn.Step(field, dn.methods.GaussLegendre(2), 0.1),
                 dn.Step(field, dn.methods.StormerVerlet(), 0.1, learn_h=True).double()):
        with pytest.raises(ConfigError):
            step(x, h=HS)
    with pytest.raises(ConfigError):
        dn.Flow([dn.Step(field, dn.methods.StormerVerlet(), 0.1)] * 3, memory="reversible")(x, h=HS)
