"""Backpropagation through an error-controlled solve in memory independent of its number of steps
(``dn.solve(..., memory="checkpoint")``): the discrete adjoint of the accepted steps, replayed bitwise in
``memory._Segment``s of ``checkpoint_every`` steps (default ``segment_length``); docs/memory.md, "Solves"."""

from __future__ import annotations

import functools

import torch

from ..memory import _Segment, default_segment, trainable
from .solution import Solution, interpolate_targets, replay, step_times

#: about the state-sized tensors one stage of a step keeps for the backward (input, activations, derivative)
STATES_PER_STAGE = 4


def segment_length(n: int, stages: int, every: int | None) -> int:
    """``every``, or ``memory.default_segment`` with a step's graph of STATES_PER_STAGE * stages states."""
    return every or default_segment(n, STATES_PER_STAGE * stages)


def replay_checkpointed(solution: Solution, x0: torch.Tensor, dense: bool, every: int | None) -> torch.Tensor:
    """The states of ``solution`` (an error-controlled solve from x0; ``dense`` as it was solved) at its
    times, recomputed from its accepted steps in checkpointed segments of ``every`` steps."""
    times = solution.t.tolist()
    targets = [tj - times[0] for tj in times]
    steps = step_times(solution.sizes, times[0])
    every = segment_length(len(steps), solution.method.step_stages, every)
    params = trainable([solution.field])
    x, states = x0, [x0]
    for a in range(0, len(steps), every):
        run = functools.partial(_run_steps, solution, steps[a:a + every], targets, len(states),
                                a + every >= len(steps), dense)
        y = _Segment.apply(run, (), x, None, *params)
        states.extend(y[:-1].unbind(0))
        x = y[-1]
    states.extend([x] * (len(times) - len(states)))  # times the last step reached (as the solve appends them)
    return torch.stack(states)


def _run_steps(solution: Solution, steps: list, targets: list, j: int, last: bool, dense: bool,
               x0: torch.Tensor, _t=None) -> torch.Tensor:
    """``run(x, t)`` of one ``_Segment``: the states at the targets from index ``j`` that ``steps`` (s, t, h)
    from x0 cover (the last one landing on the end when ``last``), then the state after them, stacked."""
    pair, field, outputs, x = solution.method, solution.field, [], x0
    for i, ((s, t, h, x, ks), x_new) in enumerate(replay(pair, field, x0, steps)):
        # dense=False: a step of h = target - s landed on the target; a target closer than h was reached
        # (within the time resolution <= h) by the step before: the solve appends the state then
        while not dense and j < len(targets) and targets[j] - s < h:
            outputs.append(x)
            j += 1
        if dense:
            landing = last and i == len(steps) - 1
            j, _ = interpolate_targets(pair, field, targets, j, (s, t, h), x, ks, x_new, outputs, landing)
        elif j < len(targets) and targets[j] - s == h:
            outputs.append(x_new)
            j += 1
        x = x_new
    return torch.stack([*outputs, x])
