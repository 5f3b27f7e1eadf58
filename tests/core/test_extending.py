"""Extending dynnets the documented way (docs/architecture.md, "Adding things"): a new explicit Runge-Kutta
method is one tableau plus a class line, a new field family is one class declaring its traits; both then
get what the library does for its own (validated order, guarantees from the pair, measured by
``dn.testing``), with nothing registered anywhere else."""

from __future__ import annotations

import math

import torch
from structure_cases import EPS, points

import dynnets as dn
from dynnets.methods import ButcherTableau, ExplicitRK
from dynnets.structure import QuadraticInvariant, SkewProduct

# --- a method: one tableau (its order is computed, the claim checked) and one class line -----------------
RALSTON = ButcherTableau.from_lists([[0, 0], [2 / 3, 0]], [1 / 4, 3 / 4], name="Ralston", order=2)


class Ralston(ExplicitRK):
    def __init__(self):
        super().__init__(RALSTON)


# --- a field family: one class with its traits and the interface they promise ----------------------------
class Rotation(dn.fields.Field):
    """F(x) = S x with a learned skew S = W - W^T: traits SkewProduct (so Cayley applies) and the norm as a
    quadratic invariant (so symplectic Runge-Kutta methods keep it)."""

    traits = frozenset({SkewProduct(), QuadraticInvariant.norm()})

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.W = torch.nn.Parameter(torch.randn(dim, dim))

    def skew(self, x):
        s = self.W - self.W.t()
        return s.expand(x.shape[0], self.dim, self.dim)

    def forward(self, x):
        self.check_input(x)
        return x @ (self.W - self.W.t()).t()


def test_a_new_tableau_method_has_its_computed_order_observed():
    field = dn.fields.Linear(torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64))
    x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    exact = torch.tensor([[math.cos(1.0), -math.sin(1.0)]], dtype=torch.float64)
    errors = [float((dn.Flow.repeat(dn.Step(field, Ralston(), 1.0 / n), n)(x0) - exact).norm()) for n in (32, 64, 128)]
    slopes = [math.log2(a / b) for a, b in zip(errors, errors[1:])]
    assert Ralston().order == 2 and all(abs(s - 2) <= 0.1 for s in slopes), slopes


def test_a_new_field_family_gets_its_guarantees_from_each_method_and_they_are_measured():
    torch.manual_seed(0)
    field = Rotation(4).double()
    x = points(8, 4, seed=0)
    for method in (dn.methods.Cayley(), dn.methods.GaussLegendre(2), dn.methods.ImplicitMidpoint()):
        flow = dn.Flow.repeat(dn.Step(field, method, 0.5), 20)
        assert flow.guarantees == {QuadraticInvariant.norm()}
        assert all(c.passed for c in dn.testing.verify(flow, x))
    # negative control: the new explicit method claims nothing here and drifts far from round-off
    euler = dn.Flow.repeat(dn.Step(field, Ralston(), 0.5), 20)
    assert euler.guarantees == frozenset()
    assert dn.testing.norm_drift(euler, x) >= 1e6 * 100 * 20 * 4 * EPS
