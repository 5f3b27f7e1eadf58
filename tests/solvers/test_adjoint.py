"""dn.solve(..., memory=...): the checkpointed discrete adjoint of error-controlled solves, and fixed-step
solves passing the memory mode to their Flow. Gradients equal plain backpropagation to round-off (float64),
with a negative control (an adjoint with the cotangent's sign flipped is caught by the same comparison);
the forward keeps one state per segment; bad options are typed errors."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dynnets as dn
import dynnets.solvers.adjoint as adjoint
from dynnets.base import Field
from dynnets.errors import ConfigError, NotInvertibleError
from dynnets.memory import SavedTensorMeter, _Segment

EPS64 = torch.finfo(torch.float64).eps
C = 10  # tolerance C * n * eps, n = accepted steps


class ForcedMLP(Field):
    """F(t, x) = B tanh(A x + b + u sin(3 t)): a time-dependent field with parameters."""

    time_dependent = True

    def __init__(self, dim: int = 4, width: int = 8):
        super().__init__()
        self.dim = dim
        self.A = nn.Parameter(torch.randn(width, dim, dtype=torch.float64) / math.sqrt(dim))
        self.b = nn.Parameter(0.1 * torch.randn(width, dtype=torch.float64))
        self.u = nn.Parameter(torch.randn(width, dtype=torch.float64))
        self.B = nn.Parameter(torch.randn(dim, width, dtype=torch.float64) / math.sqrt(width))

    def forward(self, t, x):
        return F.linear(torch.tanh(F.linear(x, self.A, self.b) + self.u * torch.sin(3.0 * t).reshape(-1, 1)), self.B)


def _field(kind: str):
    torch.manual_seed(0)
    return ForcedMLP() if kind == "forced" else dn.fields.Dense(4, 8).double()


def _gradients(field, memory: str, t_eval, **options):
    """(states, gradients w.r.t. x0 and every parameter) of loss sum(sin(x(t_j)) * j) over t_eval."""
    x0 = torch.linspace(-1.0, 1.0, 12, dtype=torch.float64).reshape(3, 4).requires_grad_(True)
    sol = dn.solve(field, x0, t_eval, memory=memory, **options)
    weights = torch.arange(1.0, len(t_eval) + 1, dtype=torch.float64).reshape(-1, 1, 1)
    grads = torch.autograd.grad((sol.x.sin() * weights).sum(), (x0, *field.parameters()))
    return sol, grads


def _defect(field, t_eval, **options) -> tuple[float, int]:
    """(the largest difference of checkpointed from plain gradients over max |plain gradient|, accepted
    steps); the states are bitwise those of the plain solve."""
    every = options.pop("checkpoint_every", None)
    plain, expected = _gradients(field, "plain", t_eval, **options)
    ours, got = _gradients(field, "checkpoint", t_eval, checkpoint_every=every, **options)
    assert torch.equal(ours.x, plain.x)
    scale = max(float(g.abs().max()) for g in expected)
    return max(float((a - b).abs().max()) for a, b in zip(got, expected, strict=True)) / scale, plain.accepted


CASES = {
    "DormandPrince5 dense": dict(rtol=1e-8),
    "DormandPrince5 landing": dict(rtol=1e-8, dense=False),
    "BogackiShampine3 landing, every 2": dict(rtol=1e-6, method=dn.methods.BogackiShampine3(), dense=False,
                                              checkpoint_every=2),
    "DormandPrince853 dense, every 3": dict(rtol=1e-9, method=dn.methods.DormandPrince853(), checkpoint_every=3),
    "RK4 fixed": dict(method=dn.methods.RK4(), h=0.01),
    "RK4 fixed, every 7": dict(method=dn.methods.RK4(), h=0.01, checkpoint_every=7),
}
# close times (0.3, 0.3 + 1e-9): a dense=False solve lands on both, the replay must too
T_EVAL = [0.0, 0.3, 0.3 + 1e-9, 1.0, 2.5]


@pytest.mark.parametrize("kind", ["forced", "autonomous"])
@pytest.mark.parametrize("case", list(CASES))
def test_checkpointed_gradients_equal_backpropagation(kind, case):
    defect, steps = _defect(_field(kind), T_EVAL, **CASES[case])
    assert defect <= C * steps * EPS64


def test_a_wrong_adjoint_is_caught(monkeypatch):
    """Negative control: the replay's segments with the cotangent's sign flipped (a wrong adjoint) give
    gradients far outside the round-off the comparison allows."""

    class Flipped(_Segment):
        @staticmethod
        def backward(ctx, grad_y):
            return _Segment.backward(ctx, -grad_y)

    field = _field("forced")
    assert _defect(field, T_EVAL, rtol=1e-8, checkpoint_every=4)[0] <= C * 100 * EPS64
    monkeypatch.setattr(adjoint, "_Segment", Flipped)
    defect, steps = _defect(field, T_EVAL, rtol=1e-8, checkpoint_every=4)
    assert defect > 1e6 * C * steps * EPS64


def test_the_forward_keeps_one_state_per_segment():
    """Tensors autograd keeps after the forward (parameters excluded): the input state of each of the
    ceil(N / k) segments (k = ``segment_length``) (and the stacked states at t_eval, none inside [0, T] here) for the checkpointed
    solve, every stage of every step for plain backpropagation."""
    field = _field("forced")
    x0 = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)

    def saved(memory, span):
        with SavedTensorMeter(exclude=field.parameters()) as meter:
            sol = dn.solve(field, x0, [0.0, span], rtol=1e-8, memory=memory)
            kept = meter.live
            sol.x.sum().backward()
        return kept, meter.peak, sol.accepted

    short, long = saved("checkpoint", 2.0), saved("checkpoint", 12.0)
    for kept, _, steps in (short, long):
        segments = math.ceil(steps / adjoint.segment_length(steps, dn.methods.DormandPrince5().step_stages, None))
        assert kept == segments * x0.nbytes
    assert long[2] > 3 * short[2]
    plain = saved("plain", 12.0)
    assert plain[0] > 5 * long[2] * x0.nbytes  # several stages per step
    assert long[1] < plain[0] / 5  # the backward's recomputed segment included


def test_parameters_alone_and_no_grad():
    """Gradients w.r.t. the parameters only (x0 needs none); under no_grad the checkpointed solve is the
    plain one."""
    field = _field("forced")
    x0 = torch.randn(2, 4, dtype=torch.float64)
    grads = {m: torch.autograd.grad(dn.solve(field, x0, [0.0, 1.0], rtol=1e-8, memory=m).x.sum(), field.B)[0]
             for m in ("plain", "checkpoint")}
    assert torch.allclose(grads["plain"], grads["checkpoint"], rtol=0, atol=1e3 * EPS64)
    with torch.no_grad():
        a = dn.solve(field, x0, [0.0, 1.0], rtol=1e-8, memory="checkpoint")
    assert torch.equal(a.x, dn.solve(field, x0, [0.0, 1.0], rtol=1e-8).x) and not a.x.requires_grad


def test_reversible_fixed_steps_reach_the_flow():
    """memory='reversible' of a fixed-step solve is the Flow's: gradients of an invertible pair equal plain
    backpropagation to round-off."""
    torch.manual_seed(0)
    field = dn.fields.Hamiltonian(2, 8).double()
    x0 = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    grads = {}
    for memory in ("plain", "reversible"):
        sol = dn.solve(field, x0, [0.0, 0.5, 1.0], method=dn.methods.SymplecticEuler(), h=0.01, memory=memory)
        grads[memory] = torch.autograd.grad(sol.x.sin().sum(), (x0, *field.parameters()))
    scale = max(float(g.abs().max()) for g in grads["plain"])
    assert max(float((a - b).abs().max()) for a, b in zip(*grads.values(), strict=True)) <= C * 100 * EPS64 * scale


def test_bad_memory_options_are_typed_errors():
    field, x0 = _field("forced"), torch.zeros(1, 4, dtype=torch.float64)
    with pytest.raises(ConfigError, match="memory must be one of"):
        dn.solve(field, x0, [0.0, 1.0], memory="adjoint")
    with pytest.raises(ConfigError, match="checkpoint_every"):
        dn.solve(field, x0, [0.0, 1.0], checkpoint_every=4)
    with pytest.raises(ConfigError, match="checkpoint_every"):
        dn.solve(field, x0, [0.0, 1.0], memory="checkpoint", checkpoint_every=0)
    with pytest.raises(NotInvertibleError, match="DormandPrince5"):
        dn.solve(field, x0, [0.0, 1.0], memory="reversible")
    with torch.no_grad(), pytest.raises(NotInvertibleError):
        dn.solve(field, x0, [0.0, 1.0], memory="reversible")
    with pytest.raises(NotInvertibleError, match="memory='reversible'"):
        dn.solve(field, x0, [0.0, 1.0], method=dn.methods.RK4(), h=0.1, memory="reversible")


def test_under_torch_func_the_solve_runs_plain():
    """As a Flow: inside a torch.func transform the checkpointed solve is the plain one (same Jacobian)."""
    field = _field("forced")
    x0 = torch.randn(1, 4, dtype=torch.float64)

    def end(memory):
        return lambda x: dn.solve(field, x, [0.0, 1.0], rtol=1e-8, memory=memory).x[-1]

    assert torch.equal(torch.func.jacrev(end("checkpoint"))(x0), torch.func.jacrev(end("plain"))(x0))


@pytest.mark.parametrize("dense", [True, False])
def test_backward_in_time_one_state_and_time_gradients(dense):
    """Decreasing t_eval, one state (d,) and t_eval requiring grad go through the checkpointed solve: its
    gradients w.r.t. x0, the parameters and every time equal plain backpropagation's to round-off."""
    field = _field("forced")
    grads = {}
    for memory in ("plain", "checkpoint"):
        x0 = torch.linspace(-1.0, 1.0, 4, dtype=torch.float64).requires_grad_(True)
        t = torch.tensor([2.0, 1.2, 0.5, -0.3], dtype=torch.float64, requires_grad=True)
        sol = dn.solve(field, x0, t, rtol=1e-8, dense=dense, memory=memory)
        assert sol.x.shape == (4, 4)
        grads[memory] = torch.autograd.grad(sol.x.sin().sum(), (x0, t, *field.parameters()))
    scale = max(float(g.abs().max()) for g in grads["plain"])
    defect = max(float((a - b).abs().max()) for a, b in zip(*grads.values(), strict=True))
    assert 0 < scale and defect <= C * 200 * EPS64 * scale


def test_a_callable_field_and_an_event():
    """The user's own nn.Module f(x) is checkpointed like a Field (its parameters are the field's: a tensor
    a plain function closes over is not, as for torchdiffeq's adjoint_params); an event's time needs the
    solve's graph, so memory='checkpoint' with an event is refused."""
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 4)).double()
    x0 = torch.randn(3, 4, dtype=torch.float64)
    grads = [torch.autograd.grad(dn.solve(module, x0, [0.0, 1.0], rtol=1e-8, memory=m).x.sum(),
                                 tuple(module.parameters())) for m in ("plain", "checkpoint")]
    assert all(float((a - b).abs().max()) <= 1e3 * EPS64 * float(b.abs().max()) for a, b in zip(*grads, strict=True))
    with pytest.raises(ConfigError, match="event"):
        dn.solve(_field("forced"), x0[:, :4].requires_grad_(True), [0.0, 1.0], memory="checkpoint",
                 event=lambda t, x: x[:, 0])
