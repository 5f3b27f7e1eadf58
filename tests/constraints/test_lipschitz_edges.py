"""Certified networks at the edges: one composition (Flow) for steps and fixed layers, any leading dims and
torch.func transforms, no negative or infinite bound from a bad buffer, no inf/NaN step size from a zero
weight, typed errors for bad options (issue cases, each with a test)."""

import math

import pytest
import torch
from torch.func import jacrev, vmap

import dynnets as dn
from dynnets.constraints import (
    BoundedLinear,
    ContractiveStep,
    Normalize,
    ZeroPad,
    orthogonal_block,
    rescaled_step,
    switching_pair,
)
from dynnets.errors import ConfigError, NotCertifiedError

EPS = torch.finfo(torch.float64).eps


def _certified_net():
    torch.manual_seed(0)
    return dn.Flow([Normalize(torch.zeros(6), 2 * torch.ones(6)), dn.Flow([switching_pair(6, 12, 0.5)]),
                  rescaled_step(6, 10), orthogonal_block(6, 8), ZeroPad(8, 9), BoundedLinear(9, 4)]).double()


def test_chain_is_flow_and_flow_takes_every_layer():
    net = _certified_net()
    assert isinstance(net, dn.Flow)
    parts = [layer.lipschitz_bound() for layer in net.layers]
    assert net.lipschitz_bound() == pytest.approx(math.prod(parts), rel=1e-14)
    with pytest.raises(TypeError, match="Layer"):
        dn.Flow([torch.nn.Linear(3, 3)])


def test_uncertified_field_gives_not_certified_error():
    field = dn.fields.FunctionField(torch.sin, 3)  # a field that certifies nothing
    net = dn.Flow([dn.Step(dn.fields.Gradient(3, 4), dn.methods.Euler(), 0.1), dn.Step(field, dn.methods.Euler(), 0.1)])
    with pytest.raises(NotCertifiedError, match=r"Flow step 1 \(Step\)"):
        net.lipschitz_bound()
    with pytest.raises(NotCertifiedError):
        dn.Flow([net]).lipschitz_bound()


def test_unbatched_and_leading_dims_work_like_the_batch():
    net = _certified_net().requires_grad_(False)
    x = torch.randn(3, 5, 6, dtype=torch.float64)
    flat = net(x.reshape(-1, 6)).reshape(3, 5, 4)
    assert net(x) == pytest.approx(flat, abs=1e-14)
    assert net(x[1, 2]) == pytest.approx(flat[1, 2], abs=1e-14)
    assert vmap(net)(x.reshape(-1, 6)) == pytest.approx(flat.reshape(-1, 4), abs=1e-14)
    j = vmap(jacrev(net))(x.reshape(-1, 6))
    assert j.shape == (15, 4, 6)
    assert float(torch.linalg.matrix_norm(j, ord=2).max()) <= net.lipschitz_bound() * (1 + 100 * EPS)
    assert jacrev(net)(x[0, 0]) == pytest.approx(j[0], abs=1e-14)


def test_normalize_with_a_negative_std_never_reports_a_negative_bound():
    n = Normalize(torch.zeros(3), torch.ones(3))
    n.load_state_dict({"mean": torch.zeros(3), "std": torch.tensor([-0.01, 1.0, 2.0])})
    assert n.lipschitz_bound() == pytest.approx(100.0, rel=1e-6)
    x, y = torch.zeros(1, 3), torch.tensor([[1e-3, 0.0, 0.0]])
    assert float((n(x) - n(y)).norm() / (x - y).norm()) == pytest.approx(n.lipschitz_bound(), rel=1e-5)
    assert dn.Flow([n, dn.constraints.ZeroPad(3, 4)]).lipschitz_bound() == pytest.approx(100.0, rel=1e-6)
    n.load_state_dict({"mean": torch.zeros(3), "std": torch.tensor([0.0, 1.0, 2.0])})
    with pytest.raises(ConfigError, match="non-zero"):
        n.lipschitz_bound()
    with pytest.raises(ConfigError, match="std > 0"):
        Normalize(0.0, -1.0)


def test_zero_weights_give_finite_step_sizes():
    torch.manual_seed(1)
    pair = switching_pair(4, 6)
    expansive, contractive = pair.steps
    with torch.no_grad():
        expansive.field.parametrizations.A.original.zero_()
    x = torch.randn(5, 4)
    assert math.isfinite(float(expansive.h.detach())) and bool(torch.isfinite(pair(x)).all())
    assert pair.lipschitz_bound() <= 1.0 + 1e-6
    field = dn.fields.Gradient(4, 6)
    with torch.no_grad():
        field.A.zero_()
    step = ContractiveStep(field, None)
    assert math.isfinite(float(step.h.detach())) and torch.equal(step(x), x)
    assert step.lipschitz_bound() == 1.0
    loss = step(x).sum() + pair(x).sum()
    loss.backward()  # no NaN gradient from the capped formulas
    assert all(bool(torch.isfinite(p.grad).all()) for p in (*pair.parameters(), *step.parameters()) if p.grad is not None)


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), 0])
def test_bad_init_scale_is_a_config_error(bad):
    for make in (lambda: dn.fields.Gradient(3, 4, init_scale=bad),
                 lambda: dn.fields.ConvGradient(1, 2, (4, 4), init_scale=bad),
                 lambda: dn.fields.RescaledGradient(3, 4, init_scale=bad)):
        with pytest.raises(ConfigError, match="init_scale"):
            make()
