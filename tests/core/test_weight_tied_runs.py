"""Work shared inside weight-tied runs: Stormer-Verlet's first-same-as-last in a ``Flow.repeat`` (the result
bitwise that of separate steps, 2 n + 1 field evaluations instead of 3 n) and the partitioned methods'
reversible backward, which takes its vector-Jacobian products at the inverse's own evaluations (one
evaluation and one VJP per shear stretch; its reconstruction bitwise the explicit inverse)."""

from __future__ import annotations

import pytest
import torch
from structure_cases import EPS, points, randomize

import dynnets as dn

M = dn.methods


class Counting(dn.fields.Hamiltonian):
    """A separable Hamiltonian field that counts its evaluations of f = grad T and g = -grad V (by
    ``partition_vjp`` too)."""

    def __init__(self, dim: int, width: int):
        super().__init__(dim, width)
        self.calls = {"f": 0, "g": 0}

    def f(self, p):
        self.calls["f"] += 1
        return super().f(p)

    def g(self, q):
        self.calls["g"] += 1
        return super().g(q)

    def partition_kick(self, which, z, point, coefficients):
        """A stretch of shears: one evaluation of f or g (closed form: f, g not called)."""
        self.calls[which] += 1
        return super().partition_kick(which, z, point, coefficients)

    def partition_vjp(self, which, point, cotangent, params):
        """The reversible backward's evaluation of f or g with its VJP (closed form: f, g not called)."""
        self.calls[which] += 1
        return super().partition_vjp(which, point, cotangent, params)

    def reset(self):
        self.calls.update(f=0, g=0)


def _step(method, learn_h=False, seed=0):
    field = randomize(Counting(3, 8), 0.5, seed)
    return dn.Step(field, method, 0.1, learn_h=learn_h).double()


@pytest.mark.parametrize("learn_h", [False, True], ids=["fixed-h", "learned-h"])
def test_stormer_verlet_run_is_bitwise_separate_steps_with_one_evaluation_less_per_step(learn_h):
    step, n = _step(M.StormerVerlet(), learn_h), 25
    x = points(4, 6, seed=1)
    with torch.no_grad():
        separate = x
        for _ in range(n):
            separate = step(separate)
        step.field.reset()
        run = dn.Flow.repeat(step, n)(x)
    assert torch.equal(run, separate)
    assert step.field.calls == {"f": n, "g": n + 1}  # separate steps: n and 2 n


def test_first_same_as_last_gradients_equal_separate_steps():
    step, n = _step(M.StormerVerlet(), learn_h=True), 25
    x = points(4, 6, seed=2)

    def grads(run):
        step.zero_grad(set_to_none=True)
        xr = x.clone().requires_grad_(True)
        run(xr).sin().sum().backward()
        return [xr.grad] + [p.grad.clone() for p in step.parameters()]

    def separate(z):
        for _ in range(n):
            z = step(z)
        return z

    want, got = grads(separate), grads(dn.Flow.repeat(step, n))
    # the shared evaluation's two cotangents are summed before its VJP instead of after: round-off only
    assert max(float((g - w).norm() / w.norm()) for g, w in zip(got, want, strict=True)) <= 10 * n * EPS


def test_symplectic_euler_and_distinct_steps_evaluate_as_before():
    se = _step(M.SymplecticEuler())
    with torch.no_grad():
        dn.Flow.repeat(se, 10)(points(2, 6, seed=3))
    assert se.field.calls == {"f": 10, "g": 10}
    steps = [_step(M.StormerVerlet(), seed=s) for s in range(3)]
    with torch.no_grad():
        dn.Flow(steps)(points(2, 6, seed=3))
    assert all(s.field.calls == {"f": 1, "g": 2} for s in steps)  # nothing shared between distinct fields


@pytest.mark.parametrize("method, evaluations", [(M.StormerVerlet(), {"f": 20, "g": 21}),
                                                 (M.SymplecticEuler(), {"f": 20, "g": 20})],
                         ids=lambda v: getattr(v, "name", ""))
def test_reversible_backward_evaluates_the_field_once_per_shear_stretch(method, evaluations):
    """The backward's evaluations are the inverse's (one per stretch, each with its VJP by
    ``partition_vjp``); the generic inverse-then-recompute backward would evaluate twice as often."""
    step, n = _step(method, learn_h=True), 20
    x = points(4, 6, seed=4).requires_grad_(True)
    out = dn.Flow.repeat(step, n, memory="reversible")(x)
    step.field.reset()
    out.sin().sum().backward()
    assert step.field.calls == evaluations
    assert step.h_raw.grad is not None and x.grad is not None


def test_reversible_backward_reconstruction_is_bitwise_the_explicit_inverse():
    step, n = _step(M.StormerVerlet(), learn_h=True), 30
    flow = dn.Flow.repeat(step, n)
    x = points(4, 6, seed=5)
    with torch.no_grad():
        y = flow(x)
        inverse = flow.inverse(y)
    grads: dict = {}
    reconstructed, grad_x = step.reversible_backward(y, torch.ones_like(y), n, grads)
    assert torch.equal(reconstructed, inverse)
    assert float((reconstructed - x).abs().max()) <= 10 * n * EPS * float(x.abs().max())
    assert set(grads) == {id(p) for p in step.parameters()}
