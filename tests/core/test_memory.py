"""Memory modes of Flow (dynnets.memory) on a test-local invertible pair (defined below):
reversible and checkpointed backpropagation give plain backprop's gradients to round-off (float64),
for the input, every parameter and a learned step size, with weight tying and nesting; a wrong inverse
shows the comparison can fail; non-invertible flows are refused."""

import math
from pathlib import Path

import pytest
import torch
from structure_cases import ForcedPendulum
from torch import nn

import dynnets as dn
from dynnets.base import Field, Method
from dynnets.errors import ConfigError, NotInvertibleError
from dynnets.memory import SavedTensorMeter

EPS64 = torch.finfo(torch.float64).eps
C = 100  # tolerance C * n * eps, n = number of steps


# A test-local explicitly invertible (field, method) pair: an additive coupling on x = (q, v),
#     q' = q + h f(v),   v' = v + h g(q'),      inverse:  v = v' - h g(q'),   q = q' - h f(v),
# with f, g small tanh networks, so that the memory machinery is tested independently of the
# library's own invertible pairs; wrong_inverse=True gives a deliberately wrong inverse.
class Coupling(Field):
    def __init__(self, half: int, width: int, scale: float = 0.5):
        super().__init__()
        self.half, self.dim = half, 2 * half
        self.A1 = nn.Parameter(torch.randn(width, half) / math.sqrt(half))
        self.a1 = nn.Parameter(0.1 * torch.randn(width))
        self.B1 = nn.Parameter(torch.randn(half, width) * scale / math.sqrt(width))
        self.A2 = nn.Parameter(torch.randn(width, half) / math.sqrt(half))
        self.a2 = nn.Parameter(0.1 * torch.randn(width))
        self.B2 = nn.Parameter(torch.randn(half, width) * scale / math.sqrt(width))

    def f(self, v):
        return torch.tanh(v @ self.A1.T + self.a1) @ self.B1.T

    def g(self, q):
        return torch.tanh(q @ self.A2.T + self.a2) @ self.B2.T

    def forward(self, x):
        q, v = x[..., : self.half], x[..., self.half:]
        return torch.cat([self.f(v), self.g(q)], dim=-1)


class AdditiveCoupling(Method):
    name = "AdditiveCoupling"

    def __init__(self, wrong_inverse: bool = False):
        self.wrong_inverse = wrong_inverse

    def check(self, field):
        if not isinstance(field, Coupling):
            raise TypeError(f"AdditiveCoupling needs a Coupling field, got {type(field).__name__}")

    def step(self, field, x, h):
        q, v = x[..., : field.half], x[..., field.half:]
        q = q + h * field.f(v)
        v = v + h * field.g(q)
        return torch.cat([q, v], dim=-1)

    def invertible(self, field):
        return True

    def inverse(self, field, y, h):
        q, v = y[..., : field.half], y[..., field.half:]
        v_old = v - h * field.g(q)
        # the wrong inverse evaluates f at the new v instead of the old one: an O(h^2) error per step
        q = q - h * field.f(v if self.wrong_inverse else v_old)
        return torch.cat([q, v_old], dim=-1)


def coupling_steps(n, h=0.01, learn_h=True, method=None):
    return [dn.Step(Coupling(4, 8), method or AdditiveCoupling(), h, learn_h=learn_h).double()
            for _ in range(n)]


def gradients(flow, x, x_requires_grad=True):
    """(d/dx, d/dtheta for every parameter) of a non-linear scalar loss of flow(x)."""
    flow.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(x_requires_grad)
    flow(x).sin().sum().backward()
    return [x.grad] + [p.grad for p in flow.parameters()]


def relative_error(got, want):
    """max over tensors of ||got - want|| / ||want||; None must match None."""
    worst = 0.0
    for g, w in zip(got, want, strict=True):
        if w is None or g is None:
            assert g is None and w is None
            continue
        worst = max(worst, float((g - w).norm() / w.norm()))
    return worst


@pytest.fixture
def x():
    return torch.randn(4, 8, dtype=torch.float64)


@pytest.mark.parametrize("tied", [False, True], ids=["distinct", "weight-tied"])
@pytest.mark.parametrize("mode", ["reversible", "checkpoint"])
def test_gradients_match_plain_backprop_after_100_steps(mode, tied, x):
    n = 100  # 500 steps on the library's own pairs: tests/core/test_memory_pairs.py
    steps = coupling_steps(1) * n if tied else coupling_steps(n)
    plain = dn.Flow(steps)
    other = dn.Flow(steps, memory=mode)
    with torch.no_grad():
        assert torch.equal(other(x), plain(x))
    want = gradients(plain, x)
    got = gradients(other, x)
    h_raw = [p for name, p in other.named_parameters() if name.endswith("h_raw")]
    assert h_raw and all(p.grad is not None and p.grad.abs().sum() > 0 for p in h_raw)
    assert relative_error(got, want) <= C * n * EPS64


def test_checkpoint_segments_and_default(x):
    steps = coupling_steps(20, learn_h=False)
    assert dn.Flow(steps, memory="checkpoint").checkpoint_every == 5  # ceil(sqrt(20))
    want = gradients(dn.Flow(steps), x)
    for k in (1, 3, 20, 50):
        flow = dn.Flow(steps, memory="checkpoint", checkpoint_every=k)
        assert flow.checkpoint_every == k
        assert relative_error(gradients(flow, x), want) <= C * 20 * EPS64


@pytest.mark.slow
def test_negative_control_wrong_inverse_is_detected(x):
    """A step whose inverse is wrong by O(h^2) reconstructs wrong states: the gradient comparison
    that the correct inverse passes at C n eps fails by more than 1e6 times that tolerance."""
    n = 500
    good = coupling_steps(n)
    bad = [dn.Step(s.field, AdditiveCoupling(wrong_inverse=True), 0.01, learn_h=True).double() for s in good]
    for b, g in zip(bad, good, strict=True):
        b.h_raw = g.h_raw
    want = gradients(dn.Flow(bad), x)
    assert relative_error(gradients(dn.Flow(good, memory="reversible"), x), want) <= C * n * EPS64
    assert relative_error(gradients(dn.Flow(bad, memory="reversible"), x), want) >= 1e6 * C * n * EPS64


@pytest.mark.parametrize("mode", ["reversible", "checkpoint"])
def test_only_parameters_or_only_input_require_grad(mode, x):
    """x0 without grad: the parameters still get plain's gradients, from .backward() and from
    torch.autograd.grad (a reentrant torch.utils.checkpoint returns none in either case); frozen
    parameters: the input's gradient."""
    steps = coupling_steps(30)
    for s in steps[::3]:
        s.field.requires_grad_(False)
    flow = dn.Flow(steps, memory=mode, **({"checkpoint_every": 4} if mode == "checkpoint" else {}))
    want = gradients(dn.Flow(steps), x, x_requires_grad=False)
    got = gradients(flow, x, x_requires_grad=False)
    assert got[0] is None and steps[0].field.A1.grad is None
    assert relative_error(got, want) <= C * 30 * EPS64
    trainable = [p for p in flow.parameters() if p.requires_grad]
    by_grad = torch.autograd.grad(flow(x).sin().sum(), trainable)
    assert relative_error(by_grad, [p.grad for p in trainable]) <= C * 30 * EPS64
    for s in steps:
        s.requires_grad_(False)
    xr = x.clone().requires_grad_()
    g_plain = torch.autograd.grad(dn.Flow(steps)(xr).sin().sum(), xr)[0]
    g_other = torch.autograd.grad(flow(xr).sin().sum(), xr)[0]
    assert float((g_other - g_plain).norm() / g_plain.norm()) <= C * 30 * EPS64


def test_checkpoint_learned_h_of_a_time_dependent_flow():
    """With learned step sizes each segment's start time depends on every earlier h: checkpointing
    passes it into the segment, so each h_raw gets plain's gradient, including that dependence."""
    torch.manual_seed(3)
    steps = [dn.Step(ForcedPendulum(), dn.methods.RK4(), h, learn_h=True).double() for h in (0.2, 0.3, 0.1, 0.25, 0.15)]
    x = torch.randn(3, 2, dtype=torch.float64)
    want = gradients(dn.Flow(steps), x)
    got = gradients(dn.Flow(steps, memory="checkpoint", checkpoint_every=2), x)
    assert all(g is not None and g.abs().sum() > 0 for g in want)
    assert relative_error(got, want) <= C * len(steps) * EPS64


def test_checkpoint_second_derivatives_equal_plain(x):
    """Under create_graph the recomputed segment stays attached: the gradient of a gradient norm w.r.t.
    the input and every parameter is plain's."""
    steps = coupling_steps(12)

    def second(flow):
        flow.zero_grad(set_to_none=True)
        xr = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(flow(xr).sin().sum(), xr, create_graph=True)
        g.square().sum().backward()
        return [xr.grad] + [p.grad for p in flow.parameters()]

    want = second(dn.Flow(steps))
    assert all(g is not None and g.abs().sum() > 0 for g in want)
    assert relative_error(second(dn.Flow(steps, memory="checkpoint", checkpoint_every=5)), want) <= C * 12 * EPS64


class NoisyDense(dn.fields.Dense):
    """A Dense field plus fresh Gaussian noise at every evaluation (as dropout would draw)."""

    def forward(self, x):
        return super().forward(x) + 0.1 * torch.randn_like(x)


def test_checkpoint_recomputes_with_the_forward_random_numbers(x):
    """A segment is recomputed with the random-number state of its forward: a field that draws noise gets
    the same noise in the recomputation, and the gradients are plain's (bitwise: distinct steps)."""
    steps = [dn.Step(NoisyDense(8, 8).double(), dn.methods.Heun(), 0.1) for _ in range(9)]

    def seeded(flow):
        torch.manual_seed(7)
        return gradients(flow, x)

    want = seeded(dn.Flow(steps))
    got = seeded(dn.Flow(steps, memory="checkpoint", checkpoint_every=3))
    assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True))


@pytest.mark.slow
def test_checkpoint_peak_rss_below_plain_in_a_default_process():
    """Issue 26: in a default process (glibc's default allocator, no MALLOC_* settings) checkpointing must
    lower the peak memory of a deep flow, not raise it. Each mode runs in a fresh subprocess
    (benchmarks.memory's child: peak-RSS growth of one forward + backward after a warm-up) on 100
    weight-tied Dense(64, 64) / RK4 steps, batch 256, float32 (checkpoint_every = 10). With
    torch.utils.checkpoint (non-reentrant) the checkpointed flow needed 1.5x plain's memory; now about 0.15x.
    """
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("peak-RSS reset needs Linux /proc/self/clear_refs")
    from benchmarks.memory import measure_memory

    plain, checkpointed = (measure_memory("dense", mode, 100, 256, threads=1)["rss_bytes"]
                           for mode in ("plain", "checkpoint"))
    assert plain > 50 * 2**20, plain  # 100 steps' saved tensors: the measurement sees them
    assert checkpointed <= 0.5 * plain, (checkpointed, plain)


def test_nested_flows_and_shared_field(x):
    shared = Coupling(4, 8).double()
    inner = dn.Flow([dn.Step(shared, AdditiveCoupling(), 0.02), *coupling_steps(5)])
    outer_steps = [inner, dn.Step(shared, AdditiveCoupling(), 0.03), inner, *coupling_steps(3)]
    want = gradients(dn.Flow(outer_steps), x)
    for mode in ("reversible", "checkpoint"):
        got = gradients(dn.Flow(outer_steps, memory=mode), x)
        assert relative_error(got, want) <= C * 20 * EPS64
    inner_rev = dn.Flow(inner.steps, memory="reversible")
    got = gradients(dn.Flow([inner_rev, inner_rev], memory="checkpoint"), x)
    want = gradients(dn.Flow([inner, inner]), x)
    assert relative_error(got, want) <= C * 20 * EPS64


@pytest.mark.parametrize("mode", ["reversible", "checkpoint"])
def test_parametrized_field_shared_with_an_enclosing_plain_flow(mode, x):
    """A parametrized field (SpectralNormBound) used inside a reversible or checkpointed flow and again by a
    plain step of the enclosing flow: the plain flow's parametrize.cached() must not hand the inner
    graph-free evaluation of the weight to the outer step (which then lost half of the gradient)."""
    from torch.nn.utils import parametrize

    from dynnets.constraints.parametrize import SpectralNormBound

    field = dn.fields.VolumePreserving(4, 8).double()
    parametrize.register_parametrization(field, "A", SpectralNormBound(1.0))
    shared = dn.Step(field, dn.methods.SymplecticEuler(), 0.1)
    others = [dn.Step(dn.fields.VolumePreserving(4, 8).double(), dn.methods.SymplecticEuler(), 0.1)
              for _ in range(3)]

    def grads(memory):
        outer = dn.Flow([dn.Flow([shared, *others], memory=memory), shared])
        return gradients(outer, x)

    assert relative_error(grads(mode), grads("plain")) <= C * 5 * EPS64


def test_non_invertible_flow_refused_naming_the_step():
    dense = dn.Step(dn.fields.Dense(8, 8), dn.methods.Euler(), 0.1)
    with pytest.raises(NotInvertibleError, match=r"memory='reversible'.*step 0 \(Dense with Euler\)"):
        dn.Flow([dense] * 3, memory="reversible")
    with pytest.raises(NotInvertibleError, match=r"step 3 \(Dense with Euler\)"):
        dn.Flow([*coupling_steps(3), dense], memory="reversible")
    with pytest.raises(NotInvertibleError, match=r"step 1 \(a nested Flow\)"):
        dn.Flow([coupling_steps(1)[0], dn.Flow([dense])], memory="reversible")
    # the same flow is fine in the other modes
    dn.Flow([dense] * 3, memory="checkpoint", checkpoint_every=2)


@pytest.mark.parametrize("kwargs, rule", [
    ({"memory": "adjoint"}, "memory must be one of plain, reversible, checkpoint; got memory='adjoint'"),
    ({"memory": "plain", "checkpoint_every": 3}, "only applies to memory='checkpoint'"),
    ({"memory": "checkpoint", "checkpoint_every": 0}, "positive integer (at most 10000000), got 0"),
    ({"memory": "checkpoint", "checkpoint_every": 2.5}, "positive integer (at most 10000000), got 2.5"),
])
def test_bad_options_rejected(kwargs, rule):
    with pytest.raises(ConfigError, match=rule.replace("(", r"\(").replace(")", r"\)")):
        dn.Flow(coupling_steps(2), **kwargs)


def test_repeat_passes_options_and_repr():
    step = coupling_steps(1)[0]
    flow = dn.Flow.repeat(step, 9, memory="checkpoint")
    assert flow.memory == "checkpoint" and flow.checkpoint_every == 3
    assert "memory=checkpoint, checkpoint_every=3" in repr(flow)
    assert dn.Flow.repeat(step, 4).memory == "plain"


def test_torch_func_transforms_run_plain(x):
    """Under torch.func (used by dn.testing) a reversible or checkpointed Flow computes exactly the plain
    Jacobian: the memory modes only change what .backward() stores."""
    steps = coupling_steps(10)
    want = dn.testing.jacobian(dn.Flow(steps), x)
    for mode in ("reversible", "checkpoint"):
        assert torch.equal(dn.testing.jacobian(dn.Flow(steps, memory=mode), x), want)


def test_double_backward_is_refused_clearly(x):
    flow = dn.Flow(coupling_steps(3), memory="reversible")
    xr = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(flow(xr).sin().sum(), xr, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        g.sum().backward()


def test_reversible_saved_memory_is_independent_of_depth():
    """Bytes of tensors autograd keeps (SavedTensorMeter): reversible stays at one step's worth at any
    depth, plain grows linearly. Counted through the backward as well, so the local recomputation of
    the reversible backward is included in the peak."""
    def peak(n, mode):
        steps = coupling_steps(1, learn_h=False) * n
        flow = dn.Flow(steps, memory=mode)
        x = torch.randn(64, 8, dtype=torch.float64, requires_grad=True)
        with SavedTensorMeter(exclude=flow.parameters()) as meter:
            flow(x).sum().backward()
        assert meter.live == 0
        return meter.peak

    rev10, rev100 = peak(10, "reversible"), peak(100, "reversible")
    plain10, plain100 = peak(10, "plain"), peak(100, "plain")
    assert rev10 == rev100 > 0
    assert plain100 >= 9 * plain10
    assert rev100 < plain10
