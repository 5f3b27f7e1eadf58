import pytest
import torch

import dynnets as dn
from dynnets.errors import ConfigError


@pytest.mark.parametrize("h", [0.1, 0.5])
def test_deep_flow_neither_explodes_nor_vanishes_at_init(h):
    """100 Euler Dense steps at init: forward and backward signal stay within a factor 4."""
    torch.manual_seed(1)
    dim, width = 64, 128
    net = dn.Flow([dn.Step(dn.fields.Dense(dim, width), dn.methods.Euler(), h) for _ in range(100)])
    x = torch.randn(256, dim, requires_grad=True)
    y = net(x)
    g = torch.randn_like(y)
    (gx,) = torch.autograd.grad(y, x, g)
    forward = float(y.detach().norm() / x.detach().norm())
    backward = float(gx.norm() / g.norm())
    assert 0.25 <= forward <= 4.0, forward
    assert 0.25 <= backward <= 4.0, backward


def test_init_scale_controls_the_residual_branch():
    """The control: a large init_scale makes the same deep flow explode, so the test above can fail."""
    torch.manual_seed(1)
    net = dn.Flow([dn.Step(dn.fields.Dense(64, 128, init_scale=3.0), dn.methods.Euler(), 0.5)
                   for _ in range(100)])
    x = torch.randn(256, 64)
    assert float(net(x).norm() / x.norm()) > 4.0


@pytest.mark.parametrize("kwargs", [dict(dim=0, width=3), dict(dim=2, width=-1), dict(dim=2.0, width=3)])
def test_sizes_validated(kwargs):
    with pytest.raises(ConfigError, match="positive integer"):
        dn.fields.Dense(**kwargs)


def test_unknown_activation_lists_choices():
    with pytest.raises(ConfigError, match=r"unknown activation 'swish'.*tanh"):
        dn.fields.Dense(2, 3, activation="swish")


@pytest.mark.parametrize("activation", sorted(dn.fields.ACTIVATIONS))
def test_activation_lipschitz_constants_are_upper_bounds(activation):
    act = dn.fields.get_activation(activation)
    z = torch.linspace(-6, 6, 20001, dtype=torch.float64)
    slopes = (act.fn(z[1:]) - act.fn(z[:-1])).abs() / (z[1:] - z[:-1])
    assert float(slopes.max()) <= act.lipschitz * (1 + 1e-9)
