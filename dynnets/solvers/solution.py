"""What ``dynnets.solve`` returns: the states at the requested times, the steps that produced them and the
dense output between them (``Solution.at``)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import torch

from ..base import Field, Method
from ..errors import ConfigError
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

    A solve backwards in time (decreasing ``t``, ``direction`` -1) integrates ``Negated(F)`` forwards in
    s = -t: ``field``, ``sizes`` and ``flow()`` are that solve's (call ``flow()(x0, -t[0])``). For one state
    x0 of shape (d,) (``one_state``) ``x`` has shape (len(t), d) and ``flow()`` takes the batch x0[None].

    Dense output: ``at(t)`` from the pair's interpolant on the accepted step holding t. An error-controlled
    solve (``controlled``) whose stages are recorded by autograd keeps every accepted step's start state and
    stages in ``segments`` (the graph holds them anyway: no extra memory); one that is not (``torch.no_grad``,
    nothing requiring grad) keeps nothing, and ``at`` recomputes its accepted steps from x0 once per call,
    bit for bit the solve's own. Fixed-step solves keep nothing either (cubic Hermite, ``at``).

    Events (``solve(..., event=g)``): ``event_t`` the first time each state's g(t, x) crosses zero, shape
    (batch,) (a 0-d tensor for one state), NaN where it does not within the solve, and ``event_x`` the
    state there; both differentiable (the implicit function theorem, ``solvers.events``).
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
        """The solution as a Flow (``options``: ``memory``, ``checkpoint_every``); it starts at ``t[0]``:
        call it as ``flow(x0, float(solution.t[0]))`` for a time-dependent field."""
        parts = [step if count == 1 else Flow.repeat(step, count) for step, (_, count) in zip(self.steps, self.sizes)]
        return Flow(parts, **options)

    def at(self, t) -> torch.Tensor:
        """The state at time(s) ``t`` (a number, a 0-d or 1-D tensor, in the span of ``self.t``), shaped
        (*t.shape, *x0.shape), from the pair's dense output on the accepted step holding each time (order 4
        for DormandPrince5, 3 for BogackiShampine3, 7 for DormandPrince853): differentiable with respect to
        what the solve depends on, and with respect to ``t`` (d x/d t = F(t, x), ``with_time_gradient``).
        A fixed-step solve keeps nothing: its steps from the state at the time of t_eval before t are
        recomputed up to the step holding t, and the cubic Hermite interpolant of that step's end states
        and F there is returned (order 3: exact for cubics, an O(h^4) interpolation error on top of the
        method's own)."""
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
        if self.controlled:
            segments = self.segments or self._replay()

            def dense(s):
                return self._dense(segments, s)
        else:
            dense = self._hermite
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
        pair = self.method
        if len(ks) < pair.dense_stages:
            pair.stages(self.field, x, h, t, ks, count=pair.dense_stages)
        return pair.combine(x, h, ks, pair.dense_weights(min(1.0, max(0.0, (offset - start) / h))))

    def _replay(self) -> tuple:
        """The accepted steps of an error-controlled solve recomputed from x0 (``replay``)."""
        x = self.x[0][None] if self.one_state else self.x[0]
        steps = step_times(self.sizes, self.direction * float(self.t[0]))
        return tuple(segment for segment, _ in replay(self.method, self.field, x, steps))

    def _hermite(self, s: float) -> torch.Tensor:
        """A fixed-step solve's state at its own time s: the steps recomputed from the preceding time of
        t_eval, then x(t + th h) = (1 - 3 th^2 + 2 th^3) x0 + (th - 2 th^2 + th^3) h F0 + (3 th^2 - 2 th^3) x1
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
    """(offset s, absolute time t, h) of each accepted step of an error-controlled solve from t0, accumulated
    as the solve does (s <- s + h, t <- t + h)."""
    out, s, t = [], 0.0, t0
    for h, _ in sizes:
        out.append((s, t, h))
        s, t = s + h, t + h
    return out


def replay(pair, field, x: torch.Tensor, steps):
    """The accepted steps ``steps`` ((s, t, h), ``step_times``) recomputed from x with the solve's own
    arithmetic, bit for bit (the first stage of a step is the last one's first-same-as-last stage, as in the
    solve; the first, F(t, x), the value the solve reused): yields ((s, t, h, x, stages), x after the step)."""
    ks: list = []
    for s, t, h in steps:
        first = [ks[pair.fsal]] if ks and pair.fsal is not None else pair.stages(field, x, h, t, count=1)
        ks, x_new = pair.attempt(field, x, h, t, first)
        yield (s, t, h, x, ks), x_new
        x = x_new


def with_time_gradient(field, direction: float, t: torch.Tensor, x: torch.Tensor, tangent_only: bool = False):
    """x_j + (t_j - t_j.detach()) F(t_j, x_j) for states x of shape (len(t), batch, ...): the value of x, and
    the derivative d x_j / d t_j = F(t_j, x_j) of the exact flow (a straight-through construction; one
    evaluation of the field per time, at the state detached). ``field`` is the solve's own: F(t, x) =
    direction * field(direction * t, x) (``Negated`` backwards). ``tangent_only``: the added term alone."""
    values = torch.stack([direction * field.at(direction * tj, xj.detach())
                          for tj, xj in zip(t.detach().tolist(), x)])
    shift = (t - t.detach()).to(x.dtype).reshape(-1, *[1] * (x.dim() - 1))
    return shift * values if tangent_only else x + shift * values
