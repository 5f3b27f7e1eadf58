"""Certified Lipschitz bounds: an adversarial search never beats lipschitz_bound() beyond round-off, and
every claim has a negative control (an unconstrained or estimate-based variant that the search breaks).

Round-off model (dynnets.constraints.search): each visited pair's normalised excess over the bound must
stay <= C * n * eps with C = 10 and n = state dimension * number of steps.
"""

import math

import pytest
import torch
import torch.nn.utils.parametrize as P
from hypothesis import given, settings
from hypothesis import strategies as st

import dynnets as dn
from dynnets import structure
from dynnets.constraints import (
    BoundedLinear,
    ContractiveStep,
    ExpansiveStep,
    Normalize,
    Orthogonal,
    SpectralNormBound,
    leaky_relu,
)
from dynnets.constraints.search import adversarial_lipschitz_search, start_pairs

EPS = torch.finfo(torch.float64).eps
C = 10.0


_pairs = start_pairs


def _set_norm(field, norm2: float, bias: float):
    """Rescale the field's weight to ||A||_op^2 = norm2 exactly and set the bias (bias > 0 keeps every
    ReLU active near the origin, so the Jacobian I +- h A^T A attains the bound there)."""
    with torch.no_grad():
        if isinstance(field, dn.fields.ConvGradient):
            s = dn.constraints.conv_spectral_norm(field.K.double(), field.input_size)
            field.K.mul_(math.sqrt(norm2) / float(s))
        else:
            field.A.mul_(math.sqrt(norm2) / float(torch.linalg.matrix_norm(field.A.double(), ord=2)))
        field.b.fill_(bias)
    return field


def _lipschitz_claim(net):
    ls = [p.L for p in net.guarantees if isinstance(p, structure.Lipschitz)]
    return ls[0] if ls else None


def dense_seed_net():
    torch.manual_seed(1)
    pairs = [dn.constraints.switching_pair(6, 12, 0.5) for _ in range(3)]
    return dn.Flow([Normalize(torch.zeros(6), 2.0 * torch.ones(6)), dn.Flow(pairs), BoundedLinear(6, 4)]), (6,), 6 * 8


def dense_exact_net():
    torch.manual_seed(2)
    steps = []
    for _ in range(3):
        fc = dn.fields.Gradient(6, 10, sign=-1, activation=leaky_relu(0.3), init_scale=3.0)  # free A, ||A||^2 ~ 3
        c = ContractiveStep(fc, 0.9)
        fe = dn.fields.Gradient(6, 10, sign=1, activation="tanh")
        steps += [ExpansiveStep(fe, partner=c, rule="exact"), c]
    return dn.Flow(steps), (6,), 6 * 6


def conv_net():
    torch.manual_seed(3)
    pairs = [dn.constraints.conv_switching_pair(2, 3, (5, 4)) for _ in range(2)]
    clamped = ContractiveStep(dn.fields.ConvGradient(2, 3, (5, 4), init_scale=4.0), None)
    return dn.Flow([*pairs, clamped]), (2, 5, 4), 40 * 5


def expansive_net():
    torch.manual_seed(4)
    f = dn.fields.Gradient(5, 8, sign=1, activation="relu", init_scale=2.0)
    g = dn.fields.ConvGradient(1, 2, (4, 4), sign=1, init_scale=2.0)
    return dn.Flow([ExpansiveStep(f, 0.3), ExpansiveStep(f, 0.2)]), (5,), 10, dn.Flow([ExpansiveStep(g, 0.25)])


@pytest.mark.slow
def test_zero_violations_over_1e5_adversarial_pairs():
    gen = torch.Generator().manual_seed(0)
    nets = [dense_seed_net(), dense_exact_net(), conv_net()]
    total = 0
    for net, shape, n in nets:
        net = net.double()
        bound = net.lipschitz_bound()
        assert _lipschitz_claim(net) == pytest.approx(bound, rel=1e-12)
        assert bound <= 1.0 + C * n * EPS
        x, y = _pairs(shape, 1024, gen)
        res = adversarial_lipschitz_search(net, x, y, bound, steps=40, lr=0.02)
        total += res.n_pairs
        assert res.max_excess <= C * n * EPS, (type(net).__name__, res)
        assert res.max_ratio > 0.2 * bound  # the search is not idle
    assert total >= 10**5


@pytest.mark.slow
def test_expansive_bound_is_respected_and_tight():
    net, shape, n, conv = expansive_net()
    gen = torch.Generator().manual_seed(1)
    for f, sh in ((net.double(), shape), (conv.double(), (1, 4, 4))):
        bound = f.lipschitz_bound()
        assert bound > 1.0
        x, y = _pairs(sh, 256, gen)
        res = adversarial_lipschitz_search(f, x, y, bound, steps=40, lr=0.02)
        assert res.max_excess <= C * n * EPS
        assert res.max_ratio > 0.9 * bound  # 1 + h beta ||W||^2 is attained locally (ReLU active on top direction)


def test_bound_dominates_jacobian_norms():
    net, shape, n = dense_exact_net()
    net = net.double()
    x = torch.randn(64, *shape, dtype=torch.float64)
    j = dn.testing.jacobian(net, x)
    assert float(torch.linalg.matrix_norm(j, ord=2).max()) <= net.lipschitz_bound() * (1 + C * n * EPS)


@pytest.mark.slow
def test_negative_control_unclamped_contractive_step_exceeds_one():
    gen = torch.Generator().manual_seed(2)
    for field, shape in ((_set_norm(dn.fields.Gradient(6, 10).double(), 4.0, 5.0), (6,)),
                         (_set_norm(dn.fields.ConvGradient(2, 3, (5, 4)).double(), 4.0, 5.0), (2, 5, 4))):
        plain = dn.Step(field, dn.methods.Euler(), 1.0).double()  # h ||A||^2 = 4 > 2: not contractive
        bound = plain.lipschitz_bound()
        assert bound == pytest.approx(3.0, rel=1e-12)
        x, y = _pairs(shape, 256, gen)
        res = adversarial_lipschitz_search(plain, x, y, 1.0, steps=40, lr=0.02)
        assert res.max_ratio > 1.5  # far beyond round-off: the search can find violations of L = 1
        assert adversarial_lipschitz_search(plain, x, y, bound, steps=40, lr=0.02).max_excess <= C * 60 * EPS
        clamped = ContractiveStep(field, 1.0).double()  # same weights, clamped: certified 1-Lipschitz
        assert clamped.lipschitz_bound() <= 1.0 + C * 60 * EPS
        assert float(clamped.h.detach()) == pytest.approx(0.5 * (1 - 64 * EPS), rel=1e-12)


def test_clamp_survives_training_that_blows_up_the_weights():
    field = dn.fields.Gradient(4, 6).double()
    step = ContractiveStep(field, 1.0, learn_h=True).double()
    opt = torch.optim.SGD(step.parameters(), lr=1.0)
    x = torch.randn(32, 4, dtype=torch.float64)
    for _ in range(20):  # ascend ||step(x) - x||: pushes the learned h and ||A|| up
        opt.zero_grad()
        (-(step(x) - x).square().sum()).backward()
        opt.step()
    with torch.no_grad():
        raw_h = float(dn.Step.h.fget(step))
        a2 = float(torch.linalg.matrix_norm(field.A, ord=2)) ** 2
        assert raw_h * a2 > 2.5  # without the clamp the step would not be contractive
        assert float(step.h) * a2 <= 2.0
    assert step.lipschitz_bound() <= 1.0 + C * 24 * EPS
    assert structure.Lipschitz(step.lipschitz_bound()) in step.guarantees
    plain = dn.Step(field, dn.methods.Euler(), raw_h)  # negative control: the same weights, unclamped
    assert plain.lipschitz_bound() > 1.25


def test_seed_condition_follows_from_exact_bound():
    # orthogonal A, slopes [1/2, 1]: exact factor max(|1-h|, |1-h/2|) <= sqrt(1 - h + h^2), for all h
    for h in torch.linspace(0.01, 3.0, 300).tolist():
        exact = dn.constraints.gradient_euler_bound(h, -1, 1.0, 1.0, (0.5, 1.0))
        assert exact <= dn.constraints.seed_contraction(h) + 4 * EPS
    torch.manual_seed(5)
    for h_c in (0.2, 0.5, 0.8):
        pair = dn.constraints.switching_pair(5, 9, h_c).double()
        e, c = pair.steps
        assert dn.constraints.Orthogonal().defect(c.field.A) <= C * 9 * EPS
        # the seed inequality, with the exact ||W|| folded into h_E
        w2 = float(torch.linalg.matrix_norm(e.field.A.detach(), ord=2)) ** 2
        lhs = dn.constraints.seed_contraction(float(c.h.detach())) * (1 + float(e.h.detach()) * w2)
        assert lhs <= 1 + C * 10 * EPS
        assert pair.lipschitz_bound() <= 1 + C * 10 * EPS


def test_seed_rule_refuses_unmet_conditions():
    c = ContractiveStep(dn.fields.Gradient(4, 6, activation=leaky_relu(0.5)), 0.5)  # A not orthogonal
    with pytest.raises(dn.errors.ConfigError, match="Orthogonal"):
        ExpansiveStep(dn.fields.Gradient(4, 6, sign=1), partner=c, rule="seed")
    c2 = ContractiveStep(dn.fields.Gradient(4, 6, activation="relu"), 0.5)
    P.register_parametrization(c2.field, "A", Orthogonal())
    with pytest.raises(dn.errors.ConfigError, match=r"\[1/2, 1\]"):
        ExpansiveStep(dn.fields.Gradient(4, 6, sign=1), partner=c2, rule="seed")
    with pytest.raises(dn.errors.ConfigError, match="sign"):
        ContractiveStep(dn.fields.Gradient(4, 6, sign=1), 0.5)
    with pytest.raises(dn.errors.NotCertifiedError):
        ContractiveStep(dn.fields.Gradient(4, 6, activation="silu"), 0.5)


def test_penalty_only_pair_is_not_certified():
    """Published-code variant: orthogonality only pushed by a penalty, h_E from the seed formula assuming
    orthogonality. dynnets reports the exact (> 1) bound and the search confirms a violation of 1."""
    torch.manual_seed(6)
    fc = dn.fields.Gradient(6, 8, activation=leaky_relu(0.5), init_scale=1.0)
    opt = torch.optim.SGD(fc.parameters(), lr=0.01)
    for _ in range(20):
        opt.zero_grad()
        dn.constraints.orthogonality_penalty(fc.A).backward()
        opt.step()
    h_c = 0.5
    h_e = 1 / dn.constraints.seed_contraction(h_c) - 1
    fe = dn.fields.Gradient(6, 8, sign=1, init_scale=1.0)
    P.register_parametrization(fe, "A", SpectralNormBound(1.0))
    with torch.no_grad():
        fe.parametrizations.A.original.mul_(100)  # ||W|| = 1 exactly after the projection
    pair = dn.Flow([dn.Step(fe, dn.methods.Euler(), h_e), dn.Step(fc, dn.methods.Euler(), h_c)]).double()
    bound = pair.lipschitz_bound()
    assert bound > 1.0 + 1e-3
    assert _lipschitz_claim(pair) == pytest.approx(bound)  # what is claimed is the exact bound, not 1
    x, y = _pairs((6,), 512, torch.Generator().manual_seed(3))
    assert adversarial_lipschitz_search(pair, x, y, 1.0, steps=40, lr=0.02).max_ratio > 1.0 + 1e-3


@pytest.mark.slow
def test_power_iteration_variant_is_never_certified():
    """torch's spectral_norm (power iteration) normalises by an estimate; h = 2 would be 'safe' only if
    the estimate were exact. Dense: 1 iteration underestimates; conv: the reshaped-kernel norm is not
    the operator norm. dynnets never reports L = 1 for either, and the search breaks L = 1."""
    torch.manual_seed(7)
    gen = torch.Generator().manual_seed(4)
    dense = _set_norm(dn.fields.Gradient(8, 8), 1.0, 5.0)
    torch.nn.utils.parametrizations.spectral_norm(dense, "A", n_power_iterations=1)
    conv = _set_norm(dn.fields.ConvGradient(2, 3, (5, 5)), 1.0, 5.0)
    torch.nn.utils.parametrizations.spectral_norm(conv, "K", n_power_iterations=20)
    for field, shape in ((dense, (8,)), (conv, (2, 5, 5))):
        field.eval()
        step = dn.Step(field, dn.methods.Euler(), 2.0).double()
        assert not dn.constraints.is_certified(step)
        bound = step.lipschitz_bound()
        assert bound > 1.0 + 1e-3
        assert structure.Lipschitz(1.0) not in step.guarantees
        x, y = _pairs(shape, 512, gen)
        assert adversarial_lipschitz_search(step, x, y, 1.0, steps=40, lr=0.02).max_ratio > 1.0 + 1e-4
    assert dn.constraints.is_certified(dn.constraints.switching_pair(4, 6))


def test_normalisation_is_in_the_bound():
    torch.manual_seed(8)
    std = torch.tensor([0.5, 2.0, 4.0])
    chain = dn.Flow([Normalize(torch.tensor([1.0, 2.0, 3.0]), std), dn.constraints.switching_pair(3, 5)]).double()
    assert chain.lipschitz_bound() == pytest.approx(2.0 * chain.layers[1].lipschitz_bound(), rel=1e-14)
    x, y = _pairs((3,), 256, torch.Generator().manual_seed(5))
    res = adversarial_lipschitz_search(chain, x, y, chain.lipschitz_bound(), steps=30, lr=0.02)
    assert res.max_excess <= C * 6 * EPS
    with pytest.raises(dn.errors.ConfigError, match="std > 0"):
        Normalize(0.0, torch.tensor([1.0, 0.0]))


@settings(max_examples=40, deadline=None)
@given(dim=st.integers(1, 6), width=st.integers(1, 8), h=st.floats(0.01, 3.0), sign=st.sampled_from([-1, 1]),
       slope=st.floats(0.0, 1.0), scale=st.floats(0.1, 4.0), seed=st.integers(0, 2**16))
def test_step_bound_dominates_exact_jacobians(dim, width, h, sign, slope, scale, seed):
    """Property: for random sizes, step sizes, slopes and weight scales, the certified Euler bound is >= the
    spectral norm of the exact Jacobian at random points."""
    torch.manual_seed(seed)
    field = dn.fields.Gradient(dim, width, sign=sign, activation=leaky_relu(slope), init_scale=scale).double()
    with torch.no_grad():
        field.b.normal_()
    step = dn.Step(field, dn.methods.Euler(), h)
    bound = step.lipschitz_bound()
    x = 3 * torch.randn(64, dim, dtype=torch.float64)
    j = dn.testing.jacobian(step, x)
    assert float(torch.linalg.matrix_norm(j, ord=2).max()) <= bound * (1 + C * dim * EPS) + C * dim * EPS
