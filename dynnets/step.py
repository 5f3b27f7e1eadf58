"""Step (one integrator step as a layer) and Flow (a network: a composition of steps)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from . import memory as _memory
from . import structure
from .base import Field, Layer, Method, add_gradients, certified_bound
from .checks import (
    MAX_STEPS,
    check_bool,
    check_int,
    check_state,
    check_step_fits,
    check_time,
    per_sample_h,
    positive_real,
    real,
)
from .errors import (
    ConfigError,
    ConfigTypeError,
    NonFiniteWeightError,
    NotCertifiedError,
    NotInvertibleError,
    ShapeError,
    StepSizeError,
)
from .function import as_field
from .linalg import shared_norms


def _check_step_size(h) -> float:
    return positive_real("step size h", h, StepSizeError, symbol="h")


def _representable_bounds(bound: float) -> dict:
    """Per floating dtype, the largest number of that dtype <= bound (as a float), so that
    h = bound * sigmoid(rho) in the parameter's dtype never exceeds the bound."""
    out = {}
    for dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
        t = torch.tensor(bound, dtype=dtype)
        out[dtype] = float(torch.nextafter(t, torch.zeros_like(t)) if float(t) > bound else t)
    return out


class Step(Layer):
    """x -> Psi^h_F(x): one step of ``method`` applied to ``field`` (a ``Field`` or a callable taken by
    ``dynnets.function.as_field``).

    ``h``: a fixed positive float, or with ``learn_h=True`` h = softplus(rho), or h_max * sigmoid(rho) when
    ``h_max`` is given (never leaving (0, h_max)). Refused: a method that cannot integrate the field
    (``IncompatibleFieldError``), an unstable step on a fixed field with ``stiffness()`` (``StepSizeError``;
    a learned h is kept below that limit). ``step(x, t)`` starts at time t (default 0), used only by a
    time-dependent field. Every call checks, without host synchronisation, the state's dtype, device and
    shape, the start time t (finite, shape () or (batch,)) and that a fixed h is finite in x's dtype.
    """

    def __init__(self, field: Field, method: Method, h: float, *, learn_h: bool = False,
                 h_max: float | None = None):
        super().__init__()
        if not isinstance(method, Method):
            raise ConfigTypeError(f"method must be a dynnets.methods.Method, got {type(method).__name__}")
        field = as_field(field)
        method.check(field)
        self.field, self.method = field, method
        h0 = _check_step_size(h)
        if h_max is not None and learn_h is not True:
            raise ConfigError(f"h_max={h_max!r} bounds a learned step size, but learn_h={learn_h!r} (rule: h_max only "
                              "with learn_h=True; a fixed h is used as given)")
        self.h_max = None if h_max is None else _check_step_size(h_max)
        # a learned h can grow up to h_max, so that is checked; without h_max it is bounded by the limit
        method.check_step(field, h0 if self.h_max is None else max(h0, self.h_max))
        self.learn_h = check_bool("learn_h", learn_h)
        limit = float(method.max_stable_step(field)) if field.fixed else math.inf
        if self.learn_h and self.h_max is None and math.isfinite(limit):
            self.h_max = limit
        if self.h_max is not None and h0 >= self.h_max:
            raise StepSizeError(f"initial step size h={h0} must be below h_max={self.h_max}")
        if self.learn_h:
            if self.h_max is None:
                rho = h0 + math.log(-math.expm1(-h0))  # softplus^(-1)(h0)
            else:
                rho = math.log(h0 / (self.h_max - h0))
                self._h_bounds = _representable_bounds(self.h_max)
            self.h_raw = nn.Parameter(torch.tensor(rho))
            learned = float(Step.h.fget(self).detach())  # this class's h (subclasses may clamp it)
            if not abs(learned - h0) <= 1e-6 * h0:  # e.g. softplus(rho) underflows for h = 1e-50 in float32
                raise StepSizeError(f"a learned step size h={h0:g} is not representable by its parameter in "
                                    f"{self.h_raw.dtype} (it reads back as {learned:g}); use a larger h or a "
                                    "fixed one")
        else:
            self._h = h0

    @property
    def h(self):
        """The step size: a float when fixed, a 0-d tensor (differentiable) when learned."""
        if not self.learn_h:
            return self._h
        if self.h_max is None:
            return F.softplus(self.h_raw)
        return self._h_bounds[self.h_raw.dtype] * torch.sigmoid(self.h_raw)

    def parameter_owner(self) -> nn.Module:
        """The field: its parameters fix the dtype (a learned h's parameter follows the states' dtype)."""
        return self.field

    def _describe(self) -> str:
        return f"Step({type(self.field).__name__}, {self.method.name})"

    def _check_call(self, x, t) -> None:
        """The checks of every call (class docstring), before any work."""
        self.check_state(x, self._describe)
        self.field.check_input(x)
        check_time(t, x, self._describe)
        if not self.learn_h:
            check_step_fits(self._h, x.dtype, self._describe)

    def forward(self, x: torch.Tensor, t=0.0, h=None) -> torch.Tensor:
        """The step from x starting at time t; ``h``: a per-sample step size (``per_sample``)."""
        self._check_call(x, t)
        if h is not None:
            return self.method.step(self.field, x, self.per_sample(h, x))
        if self.time_dependent:
            return self.method.step(self.field, x, self.h, t)
        return self.method.step(self.field, x, self.h)

    def residual(self, x: torch.Tensor, y: torch.Tensor, t=0.0) -> torch.Tensor:
        """r(x, y), zero exactly when y = step(x, t) (``Method.residual``): a loss for learning the step from
        pairs (x, y) without solving it where the method allows; ShapeError unless y has x's shape."""
        self._check_call(x, t)
        self.check_state(y, self._describe)
        if y.shape != x.shape:
            raise ShapeError(f"{self._describe()}.residual needs y of x's shape {tuple(x.shape)}, got {tuple(y.shape)}")
        return self.method.residual(self.field, x, y, self.h, t if self.time_dependent else None)

    def advance(self, x: torch.Tensor, n: int, h=None) -> torch.Tensor:
        """n applications of this step (``Method.advance``: a method may share work between them)."""
        self._check_call(x, 0.0)
        return self.method.advance(self.field, x, self.h if h is None else self.per_sample(h, x), n)

    def parts_key(self):
        """(q_dim, dim) when this step can act on the parts of a partitioned state (consecutive steps with
        one key run on the parts in a Flow), else None."""
        own_call = type(self).forward is Step.forward and type(self).advance is Step.advance
        if self.method.runs_on_parts() and not self.time_dependent and own_call:
            return self.field.partition()[0], self.field.dim
        return None

    def advance_parts(self, q: torch.Tensor, v: torch.Tensor, n: int):
        """``advance`` on the parts (the joined state was checked by an earlier step of the same key): the
        checks the parts can fail, then the method's ``advance_parts``."""
        self.check_state(q, self._describe)
        if not self.learn_h:
            check_step_fits(self._h, q.dtype, self._describe)
        return self.method.advance_parts(self.field, q, v, self.h, n)

    def per_sample(self, h, x: torch.Tensor) -> torch.Tensor:
        """h (shape () or (batch,)) shaped to broadcast against x: each row steps with its own h and
        ``guarantees`` hold row by row. ConfigError for a method without ``per_sample_h``, a learned h, or a
        fixed field with a stability limit."""
        if not self.method.per_sample_h:
            raise ConfigError(f"{self._describe()}: {self.method.name} takes no per-sample h (rule: only methods "
                              "with per_sample_h, the partitioned ones, whose guarantees hold for every h)")
        if self.learn_h:
            raise ConfigError(f"{self._describe()} learns its h; a per-sample h would replace it (rule: per-sample "
                              "h only on steps with a fixed h)")
        if self.field.fixed and math.isfinite(float(self.method.max_stable_step(self.field))):
            raise ConfigError(f"{self._describe()}: {type(self.field).__name__} has a stability limit, which a "
                              "per-sample h could exceed unchecked (rule: per-sample h on fields without one)")
        return per_sample_h(h, x, self._describe)

    def reversible_backward(self, y, grad_y, n: int, grads: dict):
        """``Method.reversible_backward`` for this step's parameters (a learned h included)."""
        params = [p for p in self.parameters() if p.requires_grad]
        with torch.enable_grad():  # a learned h with its graph (the backward runs without one)
            h = self.h
        if not (isinstance(h, torch.Tensor) and h.requires_grad):
            return self.method.reversible_backward(self.field, y, grad_y, h, n, params, grads)
        # h as a leaf for the method; its gradient goes through h(rho) once at the end
        leaf = h.detach().requires_grad_(True)
        x, grad_x = self.method.reversible_backward(self.field, y, grad_y, leaf, n, [*params, leaf], grads)
        h_bar = grads.pop(id(leaf), None)
        if h_bar is not None:
            with torch.enable_grad():
                add_gradients(grads, params, torch.autograd.grad(h, params, h_bar, allow_unused=True))
        return x, grad_x

    @property
    def time_dependent(self) -> bool:
        return self.field.time_dependent

    @property
    def duration(self):
        return self.h

    @property
    def guarantees(self) -> frozenset:
        return self.method.guarantees(self.field, self.h)

    @property
    def invertible(self) -> bool:
        return self.method.invertible(self.field)

    def inverse(self, y: torch.Tensor, t=0.0) -> torch.Tensor:
        """x with step(x, t) = y (t: the time the step starts from)."""
        self._check_call(y, t)
        if self.field.time_dependent:
            return self.method.inverse(self.field, y, self.h, t)
        return self.method.inverse(self.field, y, self.h)

    def lipschitz_bound(self) -> float:
        return certified_bound(self._describe(), lambda: self.method.lipschitz_bound(self.field, self.h))

    def extra_repr(self) -> str:
        h = float(self.h.detach() if self.learn_h else self.h)
        return f"method={self.method!r}, h={h:.4g}{' (learned)' if self.learn_h else ''}"


class Flow(Layer):
    """x -> s_M(...s_1(x)): a network of layers (Steps, nested Flows, any other ``Layer``).

    ``Flow.repeat(step, n)``: one weight-tied step n times, advanced at once (``Method.advance``). Guarantees
    compose (``structure.compose``); ``lipschitz_bound()`` is the product of the steps' (NotCertifiedError
    when one has none). Parametrised weights and their norms are computed once per forward. ``layers``: the
    distinct modules; ``steps``: the steps in order of application. ``flow(x, t)``: step k starts at
    t + h_1 + ... + h_(k-1). ``memory``: ``"plain"`` (default), ``"reversible"`` (every step invertible,
    else NotInvertibleError) or ``"checkpoint"`` (every ``checkpoint_every``-th state, default
    ceil(sqrt(len))); same forward values in every mode; plain under torch.func transforms. See
    docs/memory.md.
    """

    def __init__(self, steps: Iterable[Layer], *, memory: str = "plain",
                 checkpoint_every: int | None = None):
        super().__init__()
        if isinstance(steps, (str, bytes)) or not isinstance(steps, Iterable):
            raise ConfigTypeError(f"a Flow takes a list of layers, got {type(steps).__name__} (rule: Flow([step, ...]) "
                                  "or Flow.repeat(step, n))")
        steps = list(steps)
        if not steps:
            raise ConfigError("a Flow needs at least one step, got an empty list")
        for i, s in enumerate(steps):
            if not isinstance(s, Layer):
                raise ConfigTypeError(f"Flow step {i} must be a dynnets Step, Flow or other dynnets.base.Layer, "
                                      f"got {type(s).__name__}")
        unique = list({id(s): s for s in steps}.values())
        slot = {id(s): k for k, s in enumerate(unique)}
        self.layers = nn.ModuleList(unique)
        self._index = tuple(slot[id(s)] for s in steps)
        self._runs = _memory.runs(self._index)  # weight-tied stretches, advanced at once
        self._time_dependent = any(layer.time_dependent for layer in unique)
        self._parts_keys = tuple(layer.parts_key() if isinstance(layer, Step) else None for layer in unique)
        self.memory, every = _memory.check_mode(memory, checkpoint_every)
        self.checkpoint_every = ((every or _memory.default_segment(len(steps))) if memory == "checkpoint"
                                 else None)
        if memory == "reversible":
            self._refuse_non_invertible("memory='reversible'")
            if self.time_dependent and any(isinstance(m, Step) and m.learn_h for m in self.modules()):
                raise ConfigError("memory='reversible' with a time-dependent field needs fixed step sizes (rule: a "
                                  "learned h moves the start time of every later step, a dependence the "
                                  "reconstruction does not differentiate); use memory='checkpoint'")

    @classmethod
    def repeat(cls, step: nn.Module, n: int, **options) -> Flow:
        """n applications of one weight-tied step (``options``: ``memory``, ``checkpoint_every``)."""
        return cls([step] * check_int("Flow.repeat's count n", n, minimum=1, maximum=MAX_STEPS), **options)

    @property
    def steps(self) -> Sequence[nn.Module]:
        return tuple(self.layers[i] for i in self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __iter__(self):
        return iter(self.steps)

    @property
    def time_dependent(self) -> bool:
        return self._time_dependent

    @property
    def duration(self):
        """The time the flow advances: the sum of its steps' h (a tensor when some h is learned)."""
        per_layer = [layer.duration for layer in self.layers]
        return sum((per_layer[i] for i in self._index), 0.0)

    def forward(self, x: torch.Tensor, t=0.0, h=None) -> torch.Tensor:
        """The flow from x starting at time t; ``h``: a per-sample step size for every step (``Step.per_sample``)."""
        self._check_call(x, t)
        if h is not None:
            return self._run_per_sample(x, h)
        return self._run(x, self._start_times(t) if self.time_dependent else None, 0, len(self._index))

    def _run_per_sample(self, x: torch.Tensor, h) -> torch.Tensor:
        if self.memory != "plain":
            raise ConfigError(f"a per-sample h needs memory='plain', this Flow has memory={self.memory!r} (rule: the "
                              "reversible and checkpointed backward use each step's own h)")
        for k, layer in enumerate(self.layers):
            if not isinstance(layer, (Step, Flow)):
                raise ConfigError(f"a per-sample h is given to Steps and Flows; layer {k} is a {type(layer).__name__}")
        layers = list(self.layers)
        with parametrize.cached(), shared_norms():
            for i, count in self._runs:
                if isinstance(layers[i], Step) and count > 1:
                    x = layers[i].advance(x, count, h=h)
                    continue
                for _ in range(count):
                    x = layers[i](x, h=h)
        return x

    def _check_call(self, x, t) -> None:
        """Check x and t before any work (each step checks x's dtype itself)."""
        check_state(x, "Flow")
        check_time(t, x, "Flow")

    def _start_times(self, t) -> list:
        """The start time of each position, then the end time; in a weight-tied run the j-th step starts at
        t_run + j h (one rounding, not j accumulated ones)."""
        per_layer = [layer.duration for layer in self.layers]
        out = [t]
        for i, count in self._runs:
            run_start, h = out[-1], per_layer[i]
            out.extend(run_start + (h if j == 1 else j * h) for j in range(1, count + 1))
        return out

    def _run(self, x: torch.Tensor, times, start: int, stop: int) -> torch.Tensor:
        """Positions start, ..., stop - 1 under the memory mode; ``times``: ``_start_times`` or None."""
        saving = self.memory != "plain" and torch.is_grad_enabled() and not _memory.transforms_active()
        if not saving:
            return self._run_plain(x, None if times is None else times[start:stop], start, stop)
        layers, index = list(self.layers), self._index[start:stop]
        if self.memory == "checkpoint":
            def segment(z, segment_times, start_in, stop_in):
                return self._run_plain(z, segment_times, start + start_in, start + stop_in)

            return _memory.run_checkpointed(segment, layers, index, x, None if times is None else times[start:stop],
                                            self.checkpoint_every)
        if self.time_dependent:
            layers, index = _timed(layers, index, times[start:stop])
            return _memory.run_reversible(layers, _memory.runs(index), x)
        return _memory.run_reversible(layers, self._stretches(start, stop), x)

    def _run_plain(self, x: torch.Tensor, times, start: int, stop: int) -> torch.Tensor:
        """``_run`` with ordinary autograd; ``times``: the positions' start times or None."""
        layers = list(self.layers)
        with parametrize.cached(), shared_norms():
            if not self.time_dependent:
                return _apply_on_parts(layers, self._parts_keys, self._stretches(start, stop), x)
            for i, t in zip(self._index[start:stop], times):
                x = layers[i](x, t) if layers[i].time_dependent else layers[i](x)
            return x

    def _stretches(self, start: int, stop: int):
        """The weight-tied stretches of positions start, ..., stop - 1."""
        return self._runs if (start, stop) == (0, len(self._index)) else _memory.runs(self._index[start:stop])

    def reversible_backward(self, y, grad_y, n: int, grads: dict):
        """(x, grad_x) through n applications, step by step in reverse (a nested reversible flow)."""
        for _ in range(n):
            y, grad_y = _memory.reverse_runs(list(self.layers), self._runs, y, grad_y, grads)
        return y, grad_y

    def times(self, t=0.0, every: int = 1) -> torch.Tensor:
        """The times of ``trajectory(x, t, every)``'s states (float64; differentiable if some h is learned)."""
        every = check_int("every", every, minimum=1, maximum=MAX_STEPS)
        if not isinstance(t, torch.Tensor):
            t = real("Flow.times' start time t", t, symbol="t")
        times, n = self._start_times(t), len(self._index)
        out = [times[k] for k in range(n + 1) if k % every == 0 or k == n]
        return torch.as_tensor(_memory.stack_times(out), dtype=torch.float64)

    def trajectory(self, x: torch.Tensor, t=0.0, every: int = 1) -> torch.Tensor:
        """The states x_0, x_k, x_2k, ..., x_n (k = ``every``, the last always included), shape
        (ceil(n / k) + 1, *x.shape); segments of k steps run under the memory mode, which thus stores only
        these states and what it keeps inside a segment."""
        every = check_int("every", every, minimum=1, maximum=MAX_STEPS)
        self._check_call(x, t)
        n = len(self._index)
        states = [x]
        times = self._start_times(t) if self.time_dependent else None
        for start in range(0, n, every):
            x = self._run(x, times, start, min(start + every, n))
            states.append(x)
        return torch.stack(states)

    @property
    def guarantees(self) -> frozenset:
        per_layer = [layer.guarantees for layer in self.layers]
        return structure.compose(per_layer[i] for i in self._index)

    @property
    def invertible(self) -> bool:
        return all(layer.invertible for layer in self.layers)

    def inverse(self, y: torch.Tensor, t=0.0) -> torch.Tensor:
        """The exact inverse from the steps' explicit inverses (t: the flow's start time)."""
        self._refuse_non_invertible("Flow.inverse")
        self._check_call(y, t)
        layers, index = list(self.layers), self._index
        if self.time_dependent:
            layers, index = _timed(layers, index, self._start_times(t)[:-1])
        for i in reversed(index):
            y = layers[i].inverse(y)
        return y

    def _refuse_non_invertible(self, what_needs: str) -> None:
        for k, layer in enumerate(self.layers):
            if not layer.invertible:
                what = (f"{type(layer.field).__name__} with {layer.method.name}" if isinstance(layer, Step)
                        else "a nested Flow" if isinstance(layer, Flow) else f"a {type(layer).__name__}")
                raise NotInvertibleError(f"{what_needs} needs every step explicitly invertible; step "
                                         f"{self._index.index(k)} ({what}) is not")

    def lipschitz_bound(self) -> float:
        """Product of the steps' certified bounds; NotCertifiedError naming the first step without one."""
        per_layer = []
        for k, layer in enumerate(self.layers):
            try:
                per_layer.append(float(layer.lipschitz_bound()))
            except (NotCertifiedError, NonFiniteWeightError) as err:
                raise type(err)(f"Flow step {self._index.index(k)} ({type(layer).__name__}): {err}") from None
        return math.prod((per_layer[i] for i in self._index), start=1.0)

    def extra_repr(self) -> str:
        extra = "" if self.memory == "plain" else f", memory={self.memory}"
        if self.memory == "checkpoint":
            extra += f", checkpoint_every={self.checkpoint_every}"
        return f"steps={len(self)}, distinct={len(self.layers)}{extra}"


def _apply_on_parts(layers, keys, stretches, x: torch.Tensor) -> torch.Tensor:
    """The stretches applied to x (a longer one by one ``advance``); consecutive steps with one
    ``Step.parts_key`` work on the parts (q, v): split once, joined once at the end, same arithmetic."""
    parts, current = None, None
    for i, count in stretches:
        key = keys[i]
        if parts is not None and key != current:
            x, parts = torch.cat(parts, dim=-1), None
        if key is None:
            x = layers[i](x) if count == 1 else layers[i].advance(x, count)
            continue
        if parts is None:
            layers[i]._check_call(x, 0.0)
            parts, current = (x[..., : key[0]], x[..., key[0]:]), key
        parts = layers[i].advance_parts(*parts, count)
    return x if parts is None else torch.cat(parts, dim=-1)


class _AtTime(Layer):
    """A time-dependent layer bound to its start time, so the memory modes (which call ``layer(x)``) run it."""

    def __init__(self, layer: Layer, t):
        super().__init__()
        self.layer, self.t = layer, t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x, self.t)

    @property
    def invertible(self) -> bool:
        return self.layer.invertible

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return self.layer.inverse(y, self.t)


def _timed(layers, index, times):
    """(the layer at each position, time-dependent ones bound by ``_AtTime``; range(len(index)))."""
    bound = [_AtTime(layers[i], t) if layers[i].time_dependent else layers[i] for i, t in zip(index, times)]
    return bound, range(len(bound))
