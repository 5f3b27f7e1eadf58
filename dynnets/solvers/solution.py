"""What ``dynnets.solve`` returns: the states at the requested times, the steps that produced them and the
dense output between them (``Solution.at``)."""

from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass

import torch

from ..base import Field, Method
from ..errors import ConfigError
from ..step import Flow, Step


@dataclass(frozen=True)
class Solution:
    """``x[j]`` is the state at ``t[j]``, shape (len(t), *x0.shape).

    ``sizes``: the accepted steps as (h, count) runs; ``flow()`` composes them, so ``flow()(x0, t[0])``
    recomputes ``x[-1]`` with the same arithmetic. ``nfev``: field evaluations (None for a fixed-step method
    that is not explicit RK); ``rejected``: refused steps. Backwards in time (``direction`` -1) ``field``,
    ``sizes`` and ``flow()`` are those of ``Negated(F)`` in s = -t. ``segments``: the accepted steps' start
    states and stages, kept only when autograd records them anyway (else ``at`` replays them). ``event_t``,
    ``event_x``: each state's first zero of g and the state there (NaN where none; differentiable).
    """

    t: torch.Tensor
    x: torch.Tensor
    field: Field
    method: Method
    sizes: tuple[tuple[float, int], ...]
    nfev: int | None
    rejected: int = 0
    segments: tuple = ()
    controlled: bool = False
    direction: float = 1.0
    one_state: bool = False
    event_t: torch.Tensor | None = None
    event_x: torch.Tensor | None = None

    @property
    def accepted(self) -> int:
        """The number of steps taken (accepted)."""
        return sum(count for _, count in self.sizes)

    @property
    def steps(self) -> tuple[Step, ...]:
        """The accepted steps in order, one ``Step`` per run of equal sizes (applied ``count`` times)."""
        return tuple(Step(self.field, self.method, h) for h, _ in self.sizes)

    def flow(self, **options) -> Flow:
        """The solution as a Flow (``options``: ``memory``, ``checkpoint_every``) starting at ``t[0]``."""
        parts = [step if count == 1 else Flow.repeat(step, count) for step, (_, count) in zip(self.steps, self.sizes)]
        return Flow(parts, **options)

    def at(self, t) -> torch.Tensor:
        """The state at time(s) ``t`` (a number, 0-d or 1-D tensor in the span of ``self.t``), shaped
        (*t.shape, *x0.shape): the pair's dense output on the step holding t, or for a fixed-step solve the
        cubic Hermite interpolant of the recomputed step. Differentiable, also w.r.t. ``t``."""
        if self.controlled and self.method.dense is None:
            raise ConfigError(f"Solution.at needs a pair with a dense output, {self.method.name} has none")
        query = torch.as_tensor(t, dtype=torch.float64)
        if query.dim() > 1:
            raise ConfigError(f"Solution.at takes a time or a 1-D tensor of times, got shape {tuple(query.shape)}")
        flat = query.detach().reshape(-1)
        lo, hi = sorted((float(self.t[0]), float(self.t[-1])))
        if not bool(((flat >= lo) & (flat <= hi)).all()):
            raise ConfigError(f"Solution.at: every time must lie in the span [{lo!r}, {hi!r}] of the solve, got "
                              f"{flat.tolist()!r}")
        segments = (self.segments or self._replay()) if self.controlled else None
        dense = functools.partial(self._dense, segments) if self.controlled else self._hermite
        x = torch.stack([dense(self.direction * v) for v in flat.tolist()])
        if query.requires_grad:
            x = with_time_gradient(self.field, self.direction, query.reshape(-1), x)
        x = x[:, 0] if self.one_state else x
        return x.reshape(*query.shape, *x.shape[1:])

    def _dense(self, segments, s: float) -> torch.Tensor:
        """The batch of states at the solve's own time s (forward: s = t, backward: s = -t)."""
        offset = s - self.direction * float(self.t[0])
        starts = [segment[0] for segment in segments]
        start, t, h, x, ks = segments[max(0, bisect.bisect_right(starts, offset) - 1)]
        return self.method.interpolate(self.field, x, h, t, ks, min(1.0, max(0.0, (offset - start) / h)))[0]

    def _replay(self) -> tuple:
        """The accepted steps of an error-controlled solve recomputed from x0 (``replay``)."""
        x = self.x[0][None] if self.one_state else self.x[0]
        steps = step_times(self.sizes, self.direction * float(self.t[0]))
        return tuple(segment for segment, _ in replay(self.method, self.field, x, steps))

    def _hermite(self, s: float) -> torch.Tensor:
        """A fixed-step solve's state at its own time s: steps recomputed from the preceding time of t_eval,
        then x(t + th h) = (1 - 3 th^2 + 2 th^3) x0 + (th - 2 th^2 + th^3) h F0 + (3 th^2 - 2 th^3) x1
        + (th^3 - th^2) h F1."""
        times = (self.direction * self.t).tolist()
        j = min(len(times) - 2, max(0, bisect.bisect_right(times, s) - 1))
        h, n = self.sizes[j]
        k = min(n - 1, max(0, int((s - times[j]) / h)))
        x, t = (self.x[j][None] if self.one_state else self.x[j]), times[j]
        step = Step(self.field, self.method, h)
        for _ in range(k):
            x, t = step(x, t), t + h
        x1 = step(x, t)
        theta = min(1.0, max(0.0, (s - t) / h))
        f0, f1 = self.field.at(t, x), self.field.at(t + h, x1)
        th2, th3 = theta * theta, theta ** 3
        return ((1 - 3 * th2 + 2 * th3) * x + (theta - 2 * th2 + th3) * h * f0 + (3 * th2 - 2 * th3) * x1
                + (th3 - th2) * h * f1)


def step_times(sizes, t0: float) -> list[tuple[float, float, float]]:
    """(s, t, h) of each accepted step from t0, accumulated as the solve does."""
    out, s, t = [], 0.0, t0
    for h, _ in sizes:
        out.append((s, t, h))
        s, t = s + h, t + h
    return out


def replay(pair, field, x: torch.Tensor, steps):
    """The accepted steps ((s, t, h), ``step_times``) recomputed from x bit for bit as the solve did;
    yields ((s, t, h, x, stages), x after the step)."""
    ks: list = []
    for s, t, h in steps:
        first = [ks[pair.fsal]] if ks and pair.fsal is not None else pair.stages(field, x, h, t, count=1)
        ks, x_new = pair.attempt(field, x, h, t, first)
        yield (s, t, h, x, ks), x_new
        x = x_new


def interpolate_targets(pair, field, targets, j, step, x, ks, x_new, states, landing) -> tuple[int, int]:
    """Append the dense-output states of targets[j], ... inside the accepted ``step`` = (s, t, h); return
    (next j, evaluations made)."""
    s, t, h = step
    evaluated = 0
    while j < len(targets) and (targets[j] < s + h or (landing and j == len(targets) - 1)):
        if landing and j == len(targets) - 1:
            states.append(x_new)
        else:
            state, made = pair.interpolate(field, x, h, t, ks, (targets[j] - s) / h)
            states.append(state)
            evaluated += made
        j += 1
    return j, evaluated


def with_time_gradient(field, direction: float, t: torch.Tensor, x: torch.Tensor, tangent_only: bool = False):
    """x_j + (t_j - t_j.detach()) F(t_j, x_j), x of shape (len(t), batch, ...): the value of x with
    d x_j / d t_j = F(t_j, x_j) (F(t, x) = direction * field(direction * t, x)). ``tangent_only``: the term alone."""
    values = torch.stack([direction * field.at(direction * tj, xj.detach())
                          for tj, xj in zip(t.detach().tolist(), x)])
    shift = (t - t.detach()).to(x.dtype).reshape(-1, *[1] * (x.dim() - 1))
    return shift * values if tangent_only else x + shift * values
