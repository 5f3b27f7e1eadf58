"""``Field.linearizer``: F at a batch of points with DF and the VJP on demand (what Newton and the IFT backward of
the implicit methods call). GeneralHamiltonian's closed form (sigma evaluated once, parameter constants once
per linearizer) equals the autograd derivatives to C n eps in float64; the default is ``forward``,
``jacobian`` and one autograd VJP. Negative control: the closed form with the other activation's sigma' is far
off."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from structure_cases import EPS, points, randomize

import dynnets as dn

C = 16


def _relative(got, want) -> float:
    return float((got - want).abs().max() / want.abs().max())


def _autograd(field, x, cotangent, params):
    """(F(x), DF(x), x_bar, params_bar) by autograd, DF row by row through torch.func."""
    jac = torch.func.vmap(torch.func.jacrev(lambda z: field(z[None])[0]))(x)
    at = x.clone().requires_grad_(True)
    x_bar, *grads = torch.autograd.grad(field(at), [at, *params], cotangent)
    return field(x).detach(), jac, x_bar, grads


@pytest.mark.parametrize("potential", ["logcosh", "softplus"])
def test_general_hamiltonian_closed_form_equals_autograd(potential):
    field = randomize(dn.fields.GeneralHamiltonian(2, 16, potential), 0.8, seed=1)
    x, cotangent = points(7, 4, seed=2), points(7, 4, seed=3)
    params = list(field.parameters())
    value, jac, x_bar, grads = _autograd(field, x, cotangent, params)
    with torch.no_grad():
        lin = field.linearizer()(x)
        got_bar, got_grads = lin.vjp(cotangent, params)
        assert torch.equal(lin.value, value)  # forward is the linearisation's value
        assert _relative(lin.jacobian(), jac) <= C * 16 * EPS
        assert torch.equal(lin.jacobian(), field.jacobian(x))
        for got, want in zip([got_bar, *got_grads], [x_bar, *grads]):
            assert _relative(got, want) <= C * 16 * EPS
        other = {"logcosh": "softplus", "softplus": "logcosh"}[potential]
        net = field.energy_net
        net.activation = dataclasses.replace(
            net.activation, slope_of_value=dn.fields.GeneralHamiltonian(2, 16, other).energy_net.activation.slope_of_value)
        wrong = field.linearizer()(x)
        assert _relative(wrong.jacobian(), jac) > 1e-2
        assert _relative(wrong.vjp(cotangent, params)[0], x_bar) > 1e-2


def test_default_linearization_is_forward_jacobian_and_autograd():
    field = randomize(dn.fields.Dense(3, 8), 0.8, seed=4)
    x, cotangent = points(5, 3, seed=5), points(5, 3, seed=6)
    params = list(field.parameters())
    value, jac, x_bar, grads = _autograd(field, x, cotangent, params)
    with torch.no_grad():
        lin = field.linearizer()(x)
        assert type(lin) is dn.base.Linearization
        got_bar, got_grads = lin.vjp(cotangent, params)
        assert torch.equal(lin.value, value) and torch.equal(lin.jacobian(), field.jacobian(x))
        for got, want in zip([got_bar, *got_grads], [x_bar, *grads]):
            assert torch.equal(got, want)


def test_a_parameter_the_field_does_not_own_gets_none():
    field = randomize(dn.fields.GeneralHamiltonian(1, 4), 0.8, seed=7)
    stranger = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    _, grads = field.linearizer()(points(2, 2, seed=8)).vjp(points(2, 2, seed=9), [stranger, *field.parameters()])
    assert grads[0] is None and all(g is not None for g in grads[1:])
