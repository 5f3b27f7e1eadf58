"""Reversible and checkpointed backpropagation on the library's explicitly invertible pairs
(Hamiltonian/SymplecticEuler, Hamiltonian/StormerVerlet, VolumePreserving/SymplecticEuler): gradients
w.r.t. the input, every parameter and the learned step sizes equal plain backprop to C n eps relative
(float64, 500 steps; the issue asks 1e-10, C n eps = 1.1e-11 here), distinct and weight-tied steps.
Negative control: the same step with its shears undone in the wrong order."""

import dataclasses

import pytest
import torch

import dynnets as dn

EPS64 = torch.finfo(torch.float64).eps
C = 100
N = 500
H = 0.01


PAIRS = {
    "Hamiltonian/SymplecticEuler": (lambda: dn.fields.Hamiltonian(3, 8), dn.methods.SymplecticEuler),
    "Hamiltonian/StormerVerlet": (lambda: dn.fields.Hamiltonian(3, 8), dn.methods.StormerVerlet),
    "Hamiltonian(softplus)/StormerVerlet": (lambda: dn.fields.Hamiltonian(3, 8, "softplus"), dn.methods.StormerVerlet),
    "VolumePreserving/SymplecticEuler": (lambda: dn.fields.VolumePreserving(3, 8), dn.methods.SymplecticEuler),
}


class WrongOrderInverse(dn.methods.SymplecticEuler):
    """Symplectic Euler whose 'inverse' undoes the two shears in the wrong order (an O(h^2) error), and whose
    reversible backward reconstructs with that inverse (the generic ``Method.reversible_backward``)."""

    reversible_backward = dn.base.Method.reversible_backward

    def inverse(self, field, y, h):
        q_dim, f, g = field.partition()
        q, v = y[..., :q_dim], y[..., q_dim:]
        q = q - h * f(v)
        v = v - h * g(q)
        return torch.cat([q, v], dim=-1)


class MisdeclaredShears(dn.methods.SymplecticEuler):
    """Steps as symplectic Euler but declares its shears in the other order, so the partitioned reversible
    backward (which reconstructs and differentiates from the declared shears) undoes the wrong ones."""

    shears = (("v", 1.0), ("q", 1.0))

    def advance(self, field, x, h, n):
        return dn.methods.SymplecticEuler().advance(field, x, h, n)


def make_steps(pair, n, tied, method=None):
    field, method_cls = PAIRS[pair]
    if tied:
        return [dn.Step(field(), method or method_cls(), H, learn_h=True).double()] * n
    return [dn.Step(field(), method or method_cls(), H, learn_h=True).double() for _ in range(n)]


def gradients(flow, x):
    flow.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    flow(x).sin().sum().backward()
    return [x.grad] + [p.grad for p in flow.parameters()]


def relative_error(got, want):
    return max(float((g - w).norm() / w.norm()) for g, w in zip(got, want, strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("tied", [False, True], ids=["distinct", "weight-tied"])
@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_reversible_and_checkpoint_gradients_equal_plain(pair, tied):
    steps = make_steps(pair, N, tied)
    x = torch.randn(4, steps[0].field.dim, dtype=torch.float64)
    plain = dn.Flow(steps)
    assert plain.invertible
    # the reconstruction the reversible backward relies on: x_0 from x_N through 500 inverses
    assert dn.testing.inverse_defect(plain, plain.inverse, x) <= C * N * EPS64
    want = gradients(plain, x)
    assert all(g is not None and g.abs().sum() > 0 for g in want)  # incl. every h_raw
    for mode in ("reversible", "checkpoint"):
        got = gradients(dn.Flow(steps, memory=mode), x)
        assert relative_error(got, want) <= C * N * EPS64, mode


@pytest.mark.slow
@pytest.mark.parametrize("wrong", [WrongOrderInverse, MisdeclaredShears], ids=lambda c: c.__name__)
def test_negative_control_wrong_inverse_fails_by_orders_of_magnitude(wrong):
    good = make_steps("Hamiltonian/SymplecticEuler", N, tied=False)
    bad = [dn.Step(s.field, wrong(), H, learn_h=True).double() for s in good]
    for b, g in zip(bad, good, strict=True):
        b.h_raw = g.h_raw
    x = torch.randn(4, 6, dtype=torch.float64)
    want = gradients(dn.Flow(good), x)
    with torch.no_grad():
        assert torch.equal(dn.Flow(bad)(x), dn.Flow(good)(x))  # the same forward: only the backward is wrong
    assert relative_error(gradients(dn.Flow(good, memory="reversible"), x), want) <= C * N * EPS64
    assert relative_error(gradients(dn.Flow(bad, memory="reversible"), x), want) >= 1e6 * C * N * EPS64


@pytest.mark.parametrize("potential", ["logcosh", "softplus"])
@pytest.mark.parametrize("which", ["f", "g"])
def test_closed_form_partition_vjp_equals_autograd(which, potential):
    """The Hamiltonian's closed-form ``partition_vjp`` against the autograd default of ``Field``: the value
    bitwise (the reconstruction depends on it), the VJPs to C n eps; a parameter outside the part gets None.
    Negative control: the other activation's sigma' in the closed form is far off."""
    torch.manual_seed(0)
    field = dn.fields.Hamiltonian(3, 8, potential).double()
    point, cotangent = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    params = list(field.parameters())
    value, point_bar, got = field.partition_vjp(which, point, cotangent, params)
    want_value, want_bar, want = dn.base.Field.partition_vjp(field, which, point, cotangent, params)
    assert torch.equal(value, want_value)
    assert sum(g is None for g in got) == 3 and [g is None for g in got] == [w is None for w in want]
    pairs = [(point_bar, want_bar)] + [(g, w) for g, w in zip(got, want) if w is not None]
    assert relative_error(*zip(*pairs)) <= C * 8 * EPS64
    other = {"logcosh": "softplus", "softplus": "logcosh"}[potential]
    wrong = dn.fields.Hamiltonian(3, 8, other).kinetic.activation.slope_of_value
    for net in (field.kinetic, field.potential_energy):
        net.activation = dataclasses.replace(net.activation, slope_of_value=wrong)
    _, wrong_bar, _ = field.partition_vjp(which, point, cotangent, params)
    assert float((wrong_bar - want_bar).norm() / want_bar.norm()) > 1e-2


def test_euler_dense_refused():
    with pytest.raises(dn.errors.NotInvertibleError, match=r"step 0 \(Dense with Euler\)"):
        dn.Flow.repeat(dn.Step(dn.fields.Dense(6, 8), dn.methods.Euler(), H), 10, memory="reversible")


def test_reconstruction_error_reports_ill_conditioning():
    """The round trip in the flow's own dtype (``testing.inverse_defect(..., dtype=None)``, the error of the
    reversible reconstruction) is at round-off for gentle steps and exposes the float32 failure of strongly
    expanding ones (the situation in which reversible gradients cannot be trusted)."""

    def reconstruction_error(net, x):
        return dn.testing.inverse_defect(net, net.inverse, x, dtype=None)

    def flow(scale, h, dtype, n=200):
        torch.manual_seed(0)
        return dn.Flow([dn.Step(dn.fields.VolumePreserving(3, 8, init_scale=scale), dn.methods.SymplecticEuler(),
                                h).to(dtype) for _ in range(n)])

    x64 = torch.randn(4, 6, dtype=torch.float64)
    gentle = reconstruction_error(flow(0.5, 0.01, torch.float64), x64)
    assert gentle <= C * 200 * EPS64
    assert reconstruction_error(flow(5.0, 0.2, torch.float32), x64.float()) >= 1e6 * gentle
