"""Linear kicks (``fields.QuadraticHamiltonian``) and the SympNets built from them (``networks.sympnet``):
each partitioned step is the exact linear shear, S is symmetric for every parameter value, and the Flows are
symplectic to round-off in float64 (with a negative control: the same fields under RK4)."""

from __future__ import annotations

import pytest
import torch
from structure_cases import EPS, points, randomize

import dynnets as dn
from dynnets.errors import ConfigError
from dynnets.structure import Symplectic

DIM = 3


@pytest.mark.parametrize("rank", [None, 2])
def test_s_is_symmetric_for_every_parameter_value(rank):
    field = randomize(dn.fields.QuadraticHamiltonian(DIM, rank=rank), 1.0, seed=1)
    for S in field.matrices():
        assert torch.equal(S, S.t())


@pytest.mark.parametrize("method", [dn.methods.SymplecticEuler(), dn.methods.StormerVerlet()])
@pytest.mark.parametrize("rank", [None, 2])
@torch.no_grad()
def test_a_one_energy_step_is_the_exact_linear_shear(method, rank):
    h = 0.37
    x = points(16, 2 * DIM, seed=2)
    q, p = x[:, :DIM], x[:, DIM:]
    up = randomize(dn.fields.QuadraticHamiltonian(DIM, kinetic=False, rank=rank, bias=True), 1.0, seed=3)
    S, b = up.matrices()[1], up.potential_energy.b
    y = dn.Step(up, method, h)(x)
    assert torch.equal(y[:, :DIM], q)  # the other part does not move, bitwise
    torch.testing.assert_close(y[:, DIM:], p - h * (q @ S + b), rtol=0, atol=8 * EPS * float(y.abs().max()))
    low = randomize(dn.fields.QuadraticHamiltonian(DIM, potential_energy=False, rank=rank), 1.0, seed=4)
    y = dn.Step(low, method, h)(x)
    assert torch.equal(y[:, DIM:], p)
    torch.testing.assert_close(y[:, :DIM], q + h * (p @ low.matrices()[0]), rtol=0,
                               atol=8 * EPS * float(y.abs().max()))


@torch.no_grad()
def test_symplectic_euler_on_both_energies_is_the_pair_of_shears():
    h = 0.2
    field = randomize(dn.fields.QuadraticHamiltonian(DIM, bias=True), 1.0, seed=5)
    x = points(8, 2 * DIM, seed=6)
    S_T, S_V = field.matrices()
    q = x[:, :DIM] + h * (x[:, DIM:] @ S_T + field.kinetic.b)
    p = x[:, DIM:] - h * (q @ S_V + field.potential_energy.b)
    torch.testing.assert_close(dn.Step(field, dn.methods.SymplecticEuler(), h)(x), torch.cat([q, p], 1),
                               rtol=0, atol=16 * EPS * float(q.abs().max() + p.abs().max()))


@pytest.mark.parametrize("linear, width", [(2, 4), (3, None), (0, 5), (4, 2), (2, "diagonal")])
@pytest.mark.parametrize("method", [dn.methods.SymplecticEuler(), dn.methods.StormerVerlet()])
def test_sympnets_are_symplectic_to_round_off(linear, width, method):
    torch.manual_seed(0)
    kind = {"diagonal": True} if width == "diagonal" else {"width": width}
    net = dn.networks.sympnet(DIM, 4, linear=linear, h=0.5, method=method, **kind).double()
    for k, step in enumerate(net.layers):
        randomize(step.field, 0.8, seed=10 + k)
    x = points(8, 2 * DIM, seed=7)
    assert Symplectic() in net.guarantees
    assert float((net(x) - x).norm(dim=1).mean()) > 0.5  # far from the identity
    assert dn.testing.symplecticity_defect(net, x) <= 10 * len(net) * 2 * DIM * EPS


def test_negative_control_the_same_fields_under_rk4_are_not_symplectic():
    torch.manual_seed(0)
    net = dn.networks.sympnet(DIM, 4, linear=2, width=4, h=0.5).double()
    for k, step in enumerate(net.layers):
        randomize(step.field, 0.8, seed=10 + k)
    rk4 = dn.Flow([dn.Step(step.field, dn.methods.RK4(), 0.5) for step in net.layers])
    x = points(8, 2 * DIM, seed=7)
    assert Symplectic() not in rk4.guarantees
    assert dn.testing.symplecticity_defect(rk4, x) >= 1e6 * 10 * len(net) * 2 * DIM * EPS


def test_sympnet_layout_and_parameter_count_follow_the_paper():
    # LA-SympNet of the paper's pendulum (dim 1, 3 layers, 2 sublayers): here 2 linear steps of (S_T, b_T, S_V,
    # b_V) = 4 parameters each plus 3 ridge parameters (K, a, w) per activation module of width 1
    net = dn.networks.sympnet(1, 3, linear=2, width=1)
    assert len(net) == 3 + 2 and sum(p.numel() for p in net.parameters()) == 3 * 4 + 2 * 3
    # the paper's own LA-SympNet: diagonal activation modules p <- p - h w * tanh(q), 14 parameters
    la = dn.networks.sympnet(1, 3, linear=2, diagonal=True)
    assert len(la) == 5 and sum(p.numel() for p in la.parameters()) == 14
    field = la.steps[1].field.potential_energy
    assert torch.equal(field.K, torch.eye(1)) and [n for n, _ in field.named_parameters()] == ["w"]
    g = dn.networks.sympnet(2, 4, linear=0, width=8)
    kinds = [(s.field.kinetic is None, s.field.potential_energy is None) for s in g]
    assert kinds == [(True, False), (False, True)] * 2  # alternating p- and q-kicks


@pytest.mark.parametrize("kwargs, error", [
    ({"linear": 0, "width": None}, ConfigError),
    ({"linear": -1}, ConfigError),
    ({"method": dn.methods.RK4()}, ConfigError),
    ({"width": 3, "diagonal": True}, ConfigError),
])
def test_bad_sympnet_options_are_refused(kwargs, error):
    with pytest.raises(error):
        dn.networks.sympnet(2, 3, **kwargs)


def test_a_field_without_energy_is_refused():
    with pytest.raises(ConfigError):
        dn.fields.QuadraticHamiltonian(2, kinetic=False, potential_energy=False)
    with pytest.raises(ConfigError):
        dn.fields.Hamiltonian(2, 4, kinetic=False, potential_energy=False)
    with pytest.raises(ConfigError):
        dn.fields.Hamiltonian(2, 4, diagonal=True)  # a diagonal potential has width == dim


def test_one_energy_fields_run_reversibly_and_invert():
    torch.manual_seed(1)
    net = dn.Flow([*dn.networks.sympnet(DIM, 3, linear=3, width=4, h=0.3, method=dn.methods.StormerVerlet()),
                   *dn.networks.sympnet(DIM, 3, linear=2, diagonal=True, h=0.3)]).double()
    rev = dn.Flow(list(net), memory="reversible")
    x = points(6, 2 * DIM, seed=8).requires_grad_(True)
    torch.testing.assert_close(net.inverse(net(x)), x, rtol=0, atol=1e-13)
    g_plain = torch.autograd.grad(net(x).square().sum(), [x, *net.parameters()])
    g_rev = torch.autograd.grad(rev(x).square().sum(), [x, *rev.parameters()])
    for a, b in zip(g_plain, g_rev):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
