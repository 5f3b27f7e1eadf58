"""Flow.trajectory: the states after every k-th step, equal to step-by-step evaluation in every memory mode,
storing only what is asked; Flow.times; iterating over a flow's steps."""

import pytest
import torch
from structure_cases import ForcedPendulum

import dynnets as dn
from dynnets.errors import ConfigError
from dynnets.memory import SavedTensorMeter

EPS = torch.finfo(torch.float64).eps


def _step_by_step(steps, x, t, every):
    states = [x]
    for k, step in enumerate(steps, start=1):
        x, t = step(x, t), t + step.h
        if k % every == 0 or k == len(steps):
            states.append(x)
    return torch.stack(states)


@pytest.mark.parametrize("every", [1, 3, 10, 11])
def test_trajectory_equals_step_by_step_evaluation(every):
    dense = dn.Step(dn.fields.Dense(3, 8).double(), dn.methods.RK4(), 0.1)
    flow = dn.Flow.repeat(dense, 10)
    x = torch.randn(4, 3, dtype=torch.float64)
    got = flow.trajectory(x, every=every)
    assert torch.equal(got, _step_by_step(flow.steps, x, 0.0, every))
    assert torch.equal(got[-1], flow(x))
    assert got.shape[0] == len(flow.times(every=every)) == -(-10 // every) + 1


# (implicit steps under memory="checkpoint" failed with torch.utils.checkpoint: Newton's torch.func Jacobian
# refuses the saved-tensor hooks of non-reentrant checkpointing; dynnets' own segments use none. Reversible
# needs invertible steps)
@pytest.mark.parametrize("memory, method", [("plain", dn.methods.RK4()), ("plain", dn.methods.GaussLegendre(2)),
                                            ("checkpoint", dn.methods.RK4()),
                                            ("checkpoint", dn.methods.GaussLegendre(2)),
                                            ("reversible", dn.methods.GaussLegendre(2))],
                         ids=["plain-RK4", "plain-Gauss", "checkpoint-RK4", "checkpoint-Gauss", "reversible-Gauss"])
def test_time_dependent_trajectory_in_every_memory_mode(memory, method):
    steps = [dn.Step(ForcedPendulum(), method, h) for h in (0.2, 0.1, 0.3, 0.25, 0.15)]
    flow = dn.Flow(steps, memory=memory)
    plain = dn.Flow(steps)
    x = torch.randn(3, 2, dtype=torch.float64)
    expected = _step_by_step(steps, x, 0.4, every=2)
    with torch.no_grad():
        assert torch.equal(flow.trajectory(x, 0.4, every=2), expected)
    # with gradients: the same values, and the gradient of a loss on the whole trajectory equals plain's
    xr = x.clone().requires_grad_(True)
    traj = flow.trajectory(xr, 0.4, every=2)
    assert torch.equal(traj.detach(), expected)
    weights = torch.randn_like(traj)
    (grad,) = torch.autograd.grad((traj * weights).sum(), xr)
    xp = x.clone().requires_grad_(True)
    (reference,) = torch.autograd.grad((plain.trajectory(xp, 0.4, every=2) * weights).sum(), xp)
    assert torch.allclose(grad, reference, rtol=0, atol=1e4 * EPS * float(reference.abs().max()))
    assert flow.times(0.4, every=2).tolist() == pytest.approx([0.4, 0.7, 1.25, 1.4])


def test_reversible_trajectory_stores_only_the_recorded_states():
    """Bytes autograd keeps (SavedTensorMeter), forward and backward: with memory='reversible' a trajectory
    keeps each recorded state about twice (the segment's saved output and the loss's input), whatever
    the depth; a plain one keeps every step's intermediates."""
    step = dn.Step(dn.systems.Pendulum(), dn.methods.StormerVerlet(), 0.05)
    state_bytes = 64 * 2 * 8

    def peak(memory, n, every):
        flow = dn.Flow.repeat(step, n, memory=memory)
        x = torch.randn(64, 2, dtype=torch.float64, requires_grad=True)
        with SavedTensorMeter() as meter:
            flow.trajectory(x, every=every).square().sum().backward()
        assert meter.live == 0
        return meter.peak

    reversible, plain = peak("reversible", 100, 25), peak("plain", 100, 25)
    assert reversible <= 2 * 5 * state_bytes, reversible  # 5 recorded states
    # plain keeps at least half a state per step (the part each shear of the fused Stormer-Verlet run
    # reads), so it grows with the depth while the reversible trajectory does not
    assert plain >= 100 * state_bytes // 2, plain
    assert peak("plain", 400, 100) >= 3 * plain
    assert peak("reversible", 400, 100) == reversible  # depth x 4, the same 5 recorded states


def test_trajectory_rejects_a_bad_every():
    flow = dn.Flow.repeat(dn.Step(dn.fields.Dense(2, 3), dn.methods.Euler(), 0.1), 4)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="every"):
            flow.trajectory(torch.zeros(1, 2), every=bad)


def test_iterating_a_repeated_flow_gives_its_steps():
    step = dn.Step(dn.fields.Dense(2, 3), dn.methods.Euler(), 0.1)
    flow = dn.Flow.repeat(step, 20)
    assert len(flow.layers) == 1 and len(flow) == 20
    assert len(list(flow)) == 20 and all(s is step for s in flow)
    assert list(flow) == list(flow.steps)
