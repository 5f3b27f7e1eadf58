"""Certified blocks beyond the switching pairs: rescaled (SLL) gradient steps, dense and circular-conv, the
MaxMin step and orthogonal/MaxMin blocks. An adversarial search over > 1e5 float64 pairs never beats
lipschitz_bound() beyond round-off (C = 10, n = state dimension x steps, as in test_lipschitz.py), and
every condition has a control that breaks it: the search then exceeds 1 by far more than round-off.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import dynnets as dn
from dynnets import linalg, structure
from dynnets.constraints import (
    BoundedLinear,
    Normalize,
    OrthogonalLinear,
    conv_rescaled_step,
    leaky_relu,
    maxmin_step,
    orthogonal_block,
    rescaled_step,
)
from dynnets.constraints.search import adversarial_lipschitz_search, start_pairs
from dynnets.fields import ConvRescaledGradient, RescaledGradient

EPS = torch.finfo(torch.float64).eps
C = 10.0


def _scramble(step, scale: float, bias: float = 0.0):
    """Free weights far from any isometry (||A||^2 about ``scale``), random rescaling q and bias."""
    with torch.no_grad():
        f = step.field
        w = f.A if isinstance(f, RescaledGradient) else f.K
        w.mul_(math.sqrt(scale) / float(w.double().flatten(1).norm(dim=1).max()) * 2.0)
        f.log_q.normal_(0.0, 0.5)
        f.b.normal_(bias, 0.5)
    return step


def dense_rescaled_net():
    torch.manual_seed(11)
    steps = [_scramble(rescaled_step(6, 10, activation=leaky_relu(0.2)), 4.0) for _ in range(2)]
    steps.append(_scramble(rescaled_step(6, 3, h=1.3), 9.0))  # fewer units than dims, h < 2
    return dn.Flow([Normalize(torch.zeros(6), 0.5 * torch.ones(6)), *steps, BoundedLinear(6, 4, c=0.5)]), (6,), 6 * 5


def conv_rescaled_net():
    torch.manual_seed(12)
    steps = [_scramble(conv_rescaled_step(2, 3, (5, 4)), 4.0), _scramble(conv_rescaled_step(2, 4, (3, 3)), 4.0)]
    return dn.Flow(steps[:1]), (2, 5, 4), 40 * 2, dn.Flow(steps[1:]), (2, 3, 3)


def orthogonal_net():
    torch.manual_seed(13)
    net = dn.Flow([orthogonal_block(6, 8), orthogonal_block(8, 8), OrthogonalLinear(8, 4), maxmin_step(4)])
    return net, (6,), 8 * 6


@pytest.mark.slow
def test_zero_violations_over_1e5_adversarial_pairs():
    gen = torch.Generator().manual_seed(0)
    d_net, d_shape, d_n = dense_rescaled_net()
    c_net, c_shape, c_n, c_small, c_small_shape = conv_rescaled_net()
    o_net, o_shape, o_n = orthogonal_net()
    total = 0
    for net, shape, n in ((d_net, d_shape, d_n), (c_net, c_shape, c_n), (c_small, c_small_shape, c_n),
                          (o_net, o_shape, o_n)):
        net = net.double()
        bound = net.lipschitz_bound()
        claims = [p.L for p in net.guarantees if isinstance(p, structure.Lipschitz)]
        assert claims == [pytest.approx(bound, rel=1e-12)]
        x, y = start_pairs(shape, 768, gen)
        res = adversarial_lipschitz_search(net, x, y, bound, steps=40, lr=0.02)
        total += res.n_pairs
        assert res.max_excess <= C * n * EPS, (shape, res)
        assert res.max_ratio > 0.2 * bound
    assert total >= 10**5
    # tight where the theory says so: orthogonal + MaxMin layers are piecewise isometries
    assert o_net.lipschitz_bound() == pytest.approx(1.0, abs=C * o_n * EPS)


def test_rescaled_bound_is_the_gradient_theorem_for_B():
    """The reported bound is max(|1 - h beta s_max(B)^2|, |1 - h a s_min(B)^2|) with B = T^{-1/2} A from an
    SVD in float64, and beta s_max(B)^2 <= 1 for any A (the diagonal condition)."""
    torch.manual_seed(14)
    step = _scramble(rescaled_step(5, 7, activation=leaky_relu(0.3), h=1.5), 50.0).double()
    f = step.field
    b = f.A.detach() / f.scaling(torch.float64).detach().sqrt()[:, None]
    s = torch.linalg.svdvals(b)
    expected = max(abs(1 - 1.5 * float(s[0]) ** 2), abs(1 - 1.5 * 0.3 * float(s[-1]) ** 2))
    assert step.lipschitz_bound() == pytest.approx(expected, rel=1e-13)
    assert float(s[0]) ** 2 <= 1.0 + C * 7 * EPS
    j = dn.testing.jacobian(step, 3 * torch.randn(128, 5, dtype=torch.float64))
    assert float(torch.linalg.matrix_norm(j, ord=2).max()) <= step.lipschitz_bound() * (1 + C * 5 * EPS)


@settings(max_examples=30, deadline=None)
@given(width=st.integers(1, 9), dim=st.integers(1, 7), log_scale=st.floats(-30.0, 30.0), seed=st.integers(0, 2**16))
@torch.no_grad()
def test_diagonal_condition_holds_for_every_weight(width, dim, log_scale, seed):
    """T - beta A A^T is positive semidefinite for any A and q, at every scale (exact eigenvalues, float64)."""
    torch.manual_seed(seed)
    f = RescaledGradient(dim, width, activation="sigmoid").double()  # beta = 1/4
    with torch.no_grad():
        f.A.normal_().mul_(math.exp(log_scale))
        f.log_q.normal_(0.0, 2.0)
    a = f.A
    t = f.scaling(torch.float64)
    g = 0.25 * (a @ a.T)
    gap = torch.linalg.eigvalsh(torch.diag(t) - g)
    assert float(gap.min()) >= -C * width * EPS * float(t.max())


@torch.no_grad()
def test_conv_scaling_dominates_the_assembled_operator():
    """Conv T: one scale per hidden channel, >= the Gershgorin row sums of the assembled K K^T (equal when the
    grid is large enough that no offsets wrap); T - K K^T is PSD on the assembled operator."""
    torch.manual_seed(15)
    for grid in ((7, 6), (3, 3)):
        f = ConvRescaledGradient(2, 3, grid).double()
        f.log_q.normal_()
        k = f.K.detach()
        m = linalg.conv_operator_matrix(k, grid)  # (3 n1 n2, 2 n1 n2)
        g = m @ m.T
        q = torch.exp(f.log_q.detach()).repeat_interleave(grid[0] * grid[1])
        rows = (g.abs() @ q) / q
        t = f.scaling(torch.float64).repeat_interleave(grid[0] * grid[1])
        assert bool((rows <= t * (1 + C * 30 * EPS)).all())
        if grid == (7, 6):
            assert rows == pytest.approx(t, rel=1e-12)
        assert float(torch.linalg.eigvalsh(torch.diag(t) - g).min()) >= -C * g.shape[0] * EPS * float(t.max())
        # the field is the negative gradient K^T T^{-1} relu(K U + b) of the assembled matrices
        u = torch.randn(4, 2, *grid, dtype=torch.float64)
        z = torch.relu(u.flatten(1) @ m.T + f.b.detach().repeat_interleave(grid[0] * grid[1]))
        assert f(u).flatten(1) == pytest.approx(-(z / t) @ m, abs=1e-13)


def test_maxmin_is_the_euler_step_of_the_pair_field():
    step = maxmin_step(6).double()
    x = torch.randn(50, 6, dtype=torch.float64)
    u, v = x[:, 0::2], x[:, 1::2]
    ref = torch.stack((torch.maximum(u, v), torch.minimum(u, v)), dim=-1).reshape(50, 6)
    assert step(x) == pytest.approx(ref, abs=4 * EPS * float(x.abs().max()))
    assert step.lipschitz_bound() == pytest.approx(1.0, abs=4 * EPS)
    assert float(step(x).norm(dim=1).sub(x.norm(dim=1)).abs().max()) <= 8 * EPS * float(x.norm(dim=1).max())
    img = torch.randn(3, 4, 2, 2, dtype=torch.float64)
    conv = maxmin_step(4, axis=-3)
    assert conv(img)[:, 0] == pytest.approx(torch.maximum(img[:, 0], img[:, 1]), abs=1e-15)
    with pytest.raises(dn.errors.ConfigError, match="even"):
        maxmin_step(5)
    # control: h = 2 is past Euler's largest stable (and contractive) step 2 / ||A||^2 = 1 of this fixed
    # field, so a Step refuses it; the method applied directly has the bound 3 and the search finds ratio > 2
    with pytest.raises(dn.errors.StepSizeError, match="h <= 1"):
        dn.Step(step.field, dn.methods.Euler(), 2.0)
    euler = dn.methods.Euler()
    assert euler.lipschitz_bound(step.field, 2.0) == pytest.approx(3.0, rel=1e-14)
    xs, ys = start_pairs((6,), 256, torch.Generator().manual_seed(1))
    over = adversarial_lipschitz_search(lambda z: euler.step(step.field, z, 2.0), xs, ys, 1.0, steps=20, lr=0.02)
    assert over.max_ratio > 2.0


def test_controls_that_break_the_diagonal_condition():
    """(1) the same weights without the rescaling (T = I, a plain gradient step with h = 2); (2) T divided by
    4; (3) h = 3 > 2. Each is reported with its exact bound > 1 and the search finds ratios > 1."""
    torch.manual_seed(16)
    step = _scramble(rescaled_step(6, 10), 4.0, bias=3.0).double()
    gen = torch.Generator().manual_seed(2)
    x, y = start_pairs((6,), 512, gen)
    ok = adversarial_lipschitz_search(step, x, y, step.lipschitz_bound(), steps=40, lr=0.02)
    assert ok.max_excess <= C * 6 * EPS and step.lipschitz_bound() <= 1.0 + C * 6 * EPS

    plain = dn.fields.Gradient(6, 10).double()
    with torch.no_grad():
        plain.A.copy_(step.field.A)
        plain.b.copy_(step.field.b)
    unscaled = dn.Step(plain, dn.methods.Euler(), 2.0)

    class Quartered(RescaledGradient):
        def scaling(self, dtype=None):
            return super().scaling(dtype) / 4

    quartered = Quartered(6, 10).double()
    quartered.load_state_dict(step.field.state_dict())
    controls = [unscaled, dn.Step(quartered, dn.methods.Euler(), 2.0), dn.Step(step.field, dn.methods.Euler(), 3.0)]
    for control in controls:
        bound = control.lipschitz_bound()
        assert bound > 1.5
        assert structure.Lipschitz(1.0) not in control.guarantees
        assert adversarial_lipschitz_search(control, x, y, 1.0, steps=40, lr=0.02).max_ratio > 1.2
        assert adversarial_lipschitz_search(control, x, y, bound, steps=40, lr=0.02).max_excess <= C * 6 * EPS
    with pytest.raises(dn.errors.StepSizeError, match="h <= 2"):
        rescaled_step(6, 10, h=2.5)


@torch.no_grad()
def test_orthogonal_linear_is_exact_and_invertible():
    torch.manual_seed(17)
    q = OrthogonalLinear(5, 5).double()
    x = torch.randn(20, 5, dtype=torch.float64)
    assert q.invertible and q.inverse(q(x)) == pytest.approx(x, abs=C * 5 * EPS * float(x.abs().max()))
    assert q.lipschitz_bound() == pytest.approx(1.0, abs=C * 5 * EPS)
    wide = OrthogonalLinear(8, 3, bias=False).double()
    assert not wide.invertible and wide.lipschitz_bound() == pytest.approx(1.0, abs=C * 8 * EPS)
    with pytest.raises(dn.errors.NotInvertibleError):
        wide.inverse(torch.zeros(3, dtype=torch.float64))
    assert dn.Flow([q, q]).inverse(dn.Flow([q, q])(x)) == pytest.approx(x, abs=1e-13)
