"""A Flow runs consecutive partitioned steps on the parts (q, v) of the state (``Method.acts_on_parts``):
the result and every gradient are bitwise those of the steps applied one by one, and a method whose step
was redefined without ``advance_parts`` is run as it defines itself."""

from __future__ import annotations

import torch
from structure_cases import points, randomize

import dynnets as dn


def _steps():
    torch.manual_seed(0)
    mixed = [dn.Step(randomize(dn.fields.Hamiltonian(2, 5), 0.7, seed=k), dn.methods.StormerVerlet(), 0.2)
             for k in range(3)]
    mixed.insert(2, dn.Step(randomize(dn.fields.Dense(4, 6), 0.5, seed=9), dn.methods.RK4(), 0.1))
    return mixed + [*dn.networks.sympnet(2, 3, linear=2, diagonal=True, h=0.3).double()]


def test_a_flow_on_parts_is_its_steps_one_by_one_bitwise():
    steps = _steps()
    assert [s.parts_key() for s in steps] == [(2, 4)] * 2 + [None] + [(2, 4)] * 6  # runs of 2 and 6 on parts
    x = points(5, 4, seed=1).requires_grad_(True)
    y = dn.Flow(steps)(x)
    z = x
    for s in steps:  # each step's own call: checks, split, join
        z = s(z)
    assert torch.equal(y, z)
    params = [p for s in steps for p in s.parameters()]
    g_flow = torch.autograd.grad(y.sin().sum(), [x, *params])
    g_steps = torch.autograd.grad(z.sin().sum(), [x, *params])
    assert all(torch.equal(a, b) for a, b in zip(g_flow, g_steps))


def test_a_redefined_step_is_not_run_on_parts():
    class Reversed(dn.methods.SymplecticEuler):
        def step(self, field, x, h):  # its own (different) step: the Flow must call it
            return super().step(field, x, -h)

    assert dn.methods.SymplecticEuler().runs_on_parts() and not Reversed().runs_on_parts()
    field = randomize(dn.fields.Hamiltonian(2, 5), 0.7, seed=3)
    flow = dn.Flow([dn.Step(field, Reversed(), 0.2), dn.Step(field, dn.methods.SymplecticEuler(), 0.2)])
    x = points(4, 4, seed=2)
    with torch.no_grad():
        by_hand = dn.methods.SymplecticEuler().step(field, Reversed().step(field, x, 0.2), 0.2)
        assert torch.equal(flow(x), by_hand)
        assert not torch.allclose(flow(x), dn.Flow([dn.Step(field, dn.methods.SymplecticEuler(), 0.2)] * 2)(x))
