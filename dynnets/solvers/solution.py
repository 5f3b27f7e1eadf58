"""What ``dynnets.solve`` returns: the states at the requested times and the steps that produced them."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..base import Field, Method
from ..step import Flow, Step


@dataclass(frozen=True)
class Solution:
    """``x[j]`` is the state at ``t[j]`` (``x[0]`` the initial state), shape (len(t), *x0.shape).

    The accepted steps are dynnets ``Step``s: ``sizes`` lists them as (h, count) runs in the order they
    were taken (an error-controlled solve has count 1 each, a fixed-step solve one run per interval of
    ``t``), ``flow()`` composes them, so ``solution.flow()(x0, t[0])`` recomputes ``x[-1]`` with the same
    arithmetic, and ``flow().trajectory`` the states after each step. ``nfev`` counts the evaluations of
    the field (None for a fixed-step method that is not an explicit Runge-Kutta method); ``rejected``
    the steps the controller refused and retried.
    """

    t: torch.Tensor
    x: torch.Tensor
    field: Field
    method: Method
    sizes: tuple[tuple[float, int], ...]
    nfev: int | None
    rejected: int = 0

    @property
    def accepted(self) -> int:
        """The number of steps taken (accepted)."""
        return sum(count for _, count in self.sizes)

    @property
    def steps(self) -> tuple[Step, ...]:
        """The accepted steps in order, one ``Step`` per run of equal sizes (applied ``count`` times)."""
        return tuple(Step(self.field, self.method, h) for h, _ in self.sizes)

    def flow(self, **options) -> Flow:
        """The solution as a Flow (``options``: ``memory``, ``checkpoint_every``); it starts at ``t[0]``:
        call it as ``flow(x0, float(solution.t[0]))`` for a time-dependent field."""
        parts = [step if count == 1 else Flow.repeat(step, count) for step, (_, count) in zip(self.steps, self.sizes)]
        return Flow(parts, **options)
