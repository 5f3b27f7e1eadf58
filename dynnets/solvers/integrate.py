"""``solve(field, x0, t_eval, ...)``: a field integrated over a time grid, by fixed steps (``h``) or
error-controlled (``rtol``, ``atol``; examples in the README).

Fixed steps: interval j is cut into n_j = ceil((t_(j+1) - t_j) / h) equal steps, run as a Flow (any method
that integrates the field, with its guarantees). Error control (an ``EmbeddedPair``): a step is accepted when
``controller.pair_error`` <= 1 and ``PIController`` picks the next h; states at ``t_eval`` come from the dense
output (``dense=True``) or from steps landing on each time; ``ToleranceError`` when h falls below the time
resolution or after ``max_steps`` attempts. Steps are chosen on offsets s = t - t_eval[0]; the field gets
t <- t + h as a Flow passes it (``Solution.flow()`` reproduces the solve), and for a time-dependent field
every step must satisfy h >= 10 ulp(max |t|) (else ``ConfigError`` before any work). Decreasing t_eval is
solved with ``Negated(field)``; ``memory="checkpoint"`` under error control replays the accepted steps
(``solvers.adjoint``). A non-finite state raises ``DivergenceError`` naming the first time it appears.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from ..base import Method, first_parameter
from ..checks import MAX_STEPS, check_bool, check_int, check_state, positive_real, real
from ..errors import (
    ConfigError,
    ConfigTypeError,
    DivergenceError,
    NotInvertibleError,
    StepSizeError,
    ToleranceError,
)
from ..function import Negated, as_field
from ..memory import check_mode, transforms_active
from ..methods.embedded import DormandPrince5, EmbeddedPair
from ..methods.rk import ExplicitRK
from ..step import Flow, Step
from .adjoint import replay_checkpointed, segment_length
from .controller import NORMS, PIController, initial_step, pair_error
from .events import EventTracker
from .solution import Solution, interpolate_targets, with_time_gradient

#: the default (rtol, atol) per state dtype; other dtypes have none (pass both)
DEFAULT_TOLERANCES = {torch.float64: (1e-6, 1e-9), torch.float32: (1e-4, 1e-6)}
#: the smallest rtol, in units of the state dtype's eps: below it round-off dominates the error estimate
MIN_RTOL_EPS = 100.0


def solve(field, x0: torch.Tensor, t_eval, method: Method | None = None, *, h=None, rtol=None, atol=None,
          dense: bool | None = None, max_steps: int = 100_000, controller: PIController | None = None,
          norm: str | None = None, event=None, terminal: bool | None = None, memory: str = "plain",
          checkpoint_every: int | None = None) -> Solution:
    """The states of x' = F(t, x), x(t_eval[0]) = x0, at every time of ``t_eval`` (module docstring).

    ``field``: a ``Field`` or callable (``as_field``); ``x0``: one state (d,) or a batch, returned shaped alike
    with a leading len(t_eval); ``t_eval``: >= 2 finite times, strictly monotone, may require grad
    (``solution.with_time_gradient``); ``method``: default ``DormandPrince5()``; ``h`` (fixed steps) or
    ``rtol``/``atol`` (error control with an ``EmbeddedPair``, defaults ``DEFAULT_TOLERANCES``); ``norm``:
    "worst" (default) or "rms"; ``max_steps``: the most steps attempted; ``event``: g(t, x), one value per
    state (error control only; ``Solution.event_t``); ``terminal`` (default True): stop once every state had
    its event; ``memory``: "plain", "checkpoint" or "reversible" (fixed steps of an invertible method), as for
    a Flow. All options are checked before any work."""
    memory, checkpoint_every = check_mode(memory, checkpoint_every)
    field = as_field(field)
    times, t_tensor = _check_times(t_eval)
    one_state = _check_state(field, x0)
    direction = 1.0 if times[1] > times[0] else -1.0
    if direction < 0:  # backward in time: x' = -F(-s, x) forwards in s = -t (``Negated``)
        field, times = Negated(field), [-t for t in times]
    method = DormandPrince5() if method is None else method
    if not isinstance(method, Method):
        raise ConfigTypeError(f"method must be a dynnets Method (e.g. dn.methods.RK4(), DormandPrince5()), got "
                              f"{type(method).__name__}")
    method.check(field)
    max_steps = check_int("max_steps", max_steps, minimum=1, maximum=MAX_STEPS)
    if terminal is not None and event is None:
        raise ConfigError(f"terminal={terminal!r} applies to events, but no event was given (rule: event=g(t, x))")
    x = x0[None] if one_state else x0
    if t_tensor is not None:  # d x(t_j) / d t_0 = -(d x(t_j) / d x0) F(t_0, x0), through the solve
        x = x - with_time_gradient(field, direction, t_tensor[:1], x[None], tangent_only=True)[0]
    if h is not None:
        for name, value in (("rtol", rtol), ("atol", atol), ("dense", dense), ("controller", controller),
                            ("norm", norm), ("event", event)):
            if value is not None:
                raise ConfigError(f"{name}={value!r} applies to error-controlled solves, but h={h!r} asks for fixed "
                                  "steps (rule: give h, or rtol/atol, not both)")
        grid = _fixed_grid(times, h, max_steps)
        _check_clock(field, times, min(hj for hj, _ in grid), "the fixed step")
        sol = _checked_finite(_fixed(field, method, x, times, grid, memory, checkpoint_every))
    else:
        control = _Control(method, rtol, atol, dense, controller, norm, max_steps, x.dtype, field, times)
        terminal = True if terminal is None else check_bool("terminal", terminal)
        tracker = None if event is None else EventTracker(event, terminal, direction, method, field, x, times[0])
        sol = _controlled(field, x, times, control, tracker, memory, checkpoint_every)
    return _as_given(sol, t_tensor, direction, one_state)


def _controlled(field, x, times, control: _Control, tracker, memory: str, every: int | None) -> Solution:
    """The error-controlled solve: plain, or without a graph then replayed in checkpointed segments."""
    if memory == "reversible":
        raise NotInvertibleError(f"memory='reversible' needs explicitly invertible steps, and the steps of an "
                                 f"error-controlled solve ({control.pair.name}) have no inverse; use memory='checkpoint'")
    if memory == "plain" or not torch.is_grad_enabled() or transforms_active():
        return _checked_finite(_adaptive(field, x, times, control, tracker))
    if tracker is not None:
        raise ConfigError("memory='checkpoint' with an event: the event time's gradient needs the solve's graph "
                          "(rule: events with memory='plain')")
    with torch.no_grad():
        sol = _checked_finite(_adaptive(field, x, times, control))
    return dataclasses.replace(sol, x=replay_checkpointed(sol, x, control.dense, every))


def _as_given(sol: Solution, t_tensor, direction: float, one_state: bool) -> Solution:
    """The solution in the user's terms: the times as given, their gradients, one state unbatched."""
    x = sol.x if t_tensor is None else with_time_gradient(sol.field, direction, t_tensor[:len(sol.t)], sol.x)
    t = sol.t if direction > 0 else -sol.t
    event_t, event_x = (sol.event_t, sol.event_x) if not one_state or sol.event_t is None else (
        sol.event_t[0], sol.event_x[0])
    return dataclasses.replace(sol, t=t, x=x[:, 0] if one_state else x, direction=direction, one_state=one_state,
                               event_t=event_t, event_x=event_x)


def _check_times(t_eval) -> tuple[list[float], torch.Tensor | None]:
    """The times as floats, strictly monotone, and the tensor when it requires grad."""
    t_tensor = None
    if isinstance(t_eval, torch.Tensor):
        if t_eval.dim() != 1 or not t_eval.is_floating_point():
            raise ConfigError(f"t_eval must be a 1-D sequence of real times, got a tensor of shape "
                              f"{tuple(t_eval.shape)} and dtype {t_eval.dtype}")
        t_tensor = t_eval if t_eval.requires_grad else None
        t_eval = t_eval.tolist()
    if isinstance(t_eval, (str, bytes)) or not hasattr(t_eval, "__len__"):
        raise ConfigTypeError(f"t_eval must be a sequence of times, got {type(t_eval).__name__}")
    times = [real(f"t_eval[{j}]", v) for j, v in enumerate(t_eval)]
    if len(times) < 2:
        raise ConfigError(f"t_eval needs at least two times (the start and an end), got {len(times)}")
    sign = 1.0 if times[1] > times[0] else -1.0
    for j in range(1, len(times)):
        if not sign * times[j] > sign * times[j - 1]:
            raise ConfigError(f"t_eval must be strictly monotone (increasing, or decreasing: backward in time), "
                              f"got t_eval[{j - 1}]={times[j - 1]!r}, t_eval[{j}]={times[j]!r}")
    return times, t_tensor


def _check_state(field, x0) -> bool:
    """Refuse a bad x0; True for one state (d,) (solved as the batch x0[None])."""
    if not isinstance(x0, torch.Tensor) or not x0.is_floating_point():
        raise ConfigTypeError(f"x0 must be a floating-point tensor, got {type(x0).__name__}"
                              f"{'' if not isinstance(x0, torch.Tensor) else ' of dtype ' + str(x0.dtype)}")
    check_state(x0, f"solve's initial state x0 (for {type(field).__name__})", first_parameter(field))
    field.check_input(x0)
    if not bool(torch.isfinite(x0).all()):
        raise ConfigError("x0 must be finite, got a non-finite entry")
    return x0.dim() == 1


def _clock_resolution(times: list[float]) -> float:
    """10 ulp(max |t|): the smallest h the float64 clock t <- t + h resolves (rounding <= 5% of h)."""
    return 10.0 * max(math.ulp(times[0]), math.ulp(times[-1]))


def _check_clock(field, times: list[float], smallest: float, what: str) -> None:
    """Refuse a time-dependent field whose steps the clock cannot resolve (an autonomous one ignores t)."""
    resolution = _clock_resolution(times)
    if field.time_dependent and smallest < resolution:
        raise ConfigError(f"{what} {smallest!r} is below the time resolution {resolution:.3g} at t={times[-1]!r} "
                          f"for the time-dependent {type(field).__name__} (rule: the time t <- t + h passed to "
                          "the field must resolve every step, h >= 10 ulp(max |t|); shift the times towards 0)")


def _checked_finite(solution: Solution) -> Solution:
    """The solution, checked once for non-finite states (one host synchronisation per solve)."""
    finite = torch.isfinite(solution.x.flatten(1)).all(dim=1).tolist()
    if all(finite):
        return solution
    j = finite.index(False)
    raise DivergenceError(f"dn.solve with {solution.method.name} became non-finite between t_eval[{j - 1}]="
                          f"{float(solution.t[j - 1])!r} and t_eval[{j}]={float(solution.t[j])!r} (the first time "
                          "with a non-finite state; rule: a solve returns finite states; fixed steps: try a "
                          "smaller h or error control; or end t_eval before the blow-up)")


def _fixed_grid(times: list[float], h, max_steps: int) -> list[tuple[float, int]]:
    """(h_j, n_j) per interval: n_j = ceil(span_j / h) (a ratio within 1e-9 of an integer is that integer)."""
    h = positive_real("step size h", h, StepSizeError, symbol="h")
    grid, total = [], 0
    for a, b in zip(times[:-1], times[1:]):
        ratio = (b - a) / h
        n = max(1, round(ratio) if abs(ratio - round(ratio)) <= 1e-9 * ratio else math.ceil(ratio))
        total += n
        if total > max_steps:
            raise ConfigError(f"h={h!r} over t_eval needs more than max_steps={max_steps} steps (rule: sum over the "
                              f"intervals of ceil(length / h) <= max_steps)")
        grid.append(((b - a) / n, n))
    return grid


def _fixed(field, method, x0, times, grid, memory: str, every: int | None) -> Solution:
    """``memory``, ``every``: the memory options of each interval's Flow (``dynnets.memory``)."""
    stages = method.stage_count if isinstance(method, ExplicitRK) else 1
    parts = [Step(field, method, hj) if n == 1 and memory == "plain" else Flow.repeat(
        Step(field, method, hj), n, memory=memory,
        checkpoint_every=segment_length(n, stages, every) if memory == "checkpoint" else None) for hj, n in grid]
    states = Flow(parts).trajectory(x0, times[0])
    nfev = sum(n for _, n in grid) * method.stage_count if isinstance(method, ExplicitRK) else None
    return Solution(torch.tensor(times, dtype=torch.float64), states, field, method, tuple(grid), nfev)


class _Control:
    """The checked options of an error-controlled solve: tolerances, controller and step budget."""

    def __init__(self, method, rtol, atol, dense, controller, norm, max_steps: int, dtype, field, times):
        if not isinstance(method, EmbeddedPair):
            raise ConfigTypeError(f"error control needs an embedded pair (DormandPrince5, BogackiShampine3, "
                                  f"DormandPrince853), got {method.name}; pass h=... for fixed steps")
        if (rtol is None or atol is None) and dtype not in DEFAULT_TOLERANCES:
            raise ConfigError(f"{dtype} states have no default tolerance (rule: defaults exist for "
                              f"{', '.join(map(str, DEFAULT_TOLERANCES))}); pass rtol and atol")
        default_rtol, default_atol = DEFAULT_TOLERANCES.get(dtype, (None, None))
        rtol = default_rtol if rtol is None else positive_real("rtol", rtol)
        atol = default_atol if atol is None else real("atol", atol, minimum=0.0)
        floor = MIN_RTOL_EPS * torch.finfo(dtype).eps
        if not floor <= rtol <= 1.0:
            raise ConfigError(f"rtol must lie in [{floor:.3g}, 1] for {dtype} states (rule: at least "
                              f"{MIN_RTOL_EPS:g} eps, where round-off would dominate the error estimate), "
                              f"got rtol={rtol!r}")
        dense = True if dense is None else check_bool("dense", dense)
        if dense and method.dense is None:  # (events too: their roots are located on the dense output)
            raise ConfigError(f"dense=True needs a pair with a dense output, {method.name} has none; pass "
                              "dense=False to step to every time of t_eval")
        if controller is not None and not isinstance(controller, PIController):
            raise ConfigTypeError(f"controller must be a PIController, got {type(controller).__name__}")
        norm = "worst" if norm is None else norm
        if norm not in NORMS:
            raise ConfigError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
        intervals = [b - a for a, b in zip(times[:-1], times[1:])]
        _check_clock(field, times, times[-1] - times[0] if dense else min(intervals),
                     "the span of t_eval" if dense else "the shortest interval of t_eval (dense=False)")
        self.pair, self.rtol, self.atol, self.controller = method, rtol, atol, controller or PIController()
        self.max_steps, self.dense, self.norm, self.attempts = max_steps, dense, norm, 0

    def budget(self, t: float, h: float, err: float, resolution: float) -> None:
        """Refuse an h that is not finite and positive, more than max_steps attempts, or h below the resolution."""
        self.attempts += 1
        if not (h > 0.0 and math.isfinite(h)):
            raise StepSizeError(f"{self.pair.name} was about to attempt the step h={h!r} at t={t!r} (last error "
                                f"estimate {err:.3e}; rule: every attempted step is finite and positive)")
        if self.attempts > self.max_steps:
            raise ToleranceError(f"{self.pair.name} did not reach the end within max_steps={self.max_steps} attempted "
                                 f"steps: at t={t!r} with h={h:.3e}, last error estimate {err:.3e} (tolerance 1)")
        if h < resolution:
            raise ToleranceError(f"{self.pair.name} cannot meet rtol={self.rtol:g}, atol={self.atol:g} at t={t!r}: "
                                 f"the step size h={h:.3e} fell below the time resolution {resolution:.3e} with "
                                 f"error estimate {err:.3e} (rule: error <= 1 in the scaled norm)")


def _adaptive(field, x0, times, control: _Control, tracker: EventTracker | None = None) -> Solution:
    """The loop of the module docstring (s: offset from times[0]; t: the field's absolute time). Accepted
    steps with a graph are kept as (s, t, h, x, stages) for ``Solution.at``."""
    pair, controller, dense = control.pair, control.controller, control.dense
    targets = [tj - times[0] for tj in times]
    s, t, x, end = 0.0, times[0], x0, targets[-1]
    resolution = 10.0 * math.ulp(end)  # of the offsets s <= end (and of end - s)
    if field.time_dependent:
        resolution = max(resolution, _clock_resolution(times))
    k0 = field.at(t, x)
    # a first guess below the resolution is raised to it: the error control then accepts or refuses that step
    h = max(resolution, initial_step(field, k0, x, t, end, pair.error_order, control.rtol, control.atol,
                                         control.norm))
    nfev, rejected, previous, after_rejection, err = 2, 0, 1.0, False, math.nan
    states, sizes, segments, j = [x0], [], [], 1
    while j < len(times):
        target = end if dense else targets[j]
        if target - s <= resolution:  # reached up to the rounding of s <- s + h: the state is there
            states.append(x)
            j += 1
            continue
        landing = s + h >= target - resolution
        step = target - s if landing else h
        control.budget(t, step, err, resolution)
        ks, x_new = pair.attempt(field, x, step, t, [k0])
        nfev += pair.step_stages - 1
        err = pair_error(pair, ks, step, x, x_new, control.rtol, control.atol, control.norm)
        if not err <= 1.0:
            rejected += 1
            h, after_rejection = controller.rejected(step, err, pair.error_order), True
            continue
        if dense:
            j, evaluated = interpolate_targets(pair, field, targets, j, (s, t, step), x, ks, x_new, states,
                                               landing)
            nfev += evaluated
        elif landing:
            states.append(x_new)
            j += 1
        h = controller.accepted(step, err, previous, pair.error_order, after_rejection)
        previous, after_rejection = err, False
        sizes.append((step, 1))
        segment = (s, t, step, x, ks)
        if x_new.requires_grad:  # its stages are in the autograd graph anyway: kept for the dense output
            segments.append(segment)
        s, t, x = s + step, t + step, x_new
        if tracker is not None and tracker.after_step(segment, x):
            break
        if j < len(times):
            k0 = ks[pair.fsal] if pair.fsal is not None else field.at(t, x)
            nfev += pair.fsal is None
    events = (None, None) if tracker is None else tracker.result(x0)
    return Solution(torch.tensor(times[:len(states)], dtype=torch.float64), torch.stack(states), field, pair,
                    tuple(sizes), nfev + (tracker.evaluations if tracker else 0), rejected, segments=tuple(segments), controlled=True,
                    event_t=events[0], event_x=events[1])
