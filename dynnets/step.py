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
    StepSizeError,
)
from .function import as_field
from .linalg import shared_norms


def _check_step_size(h) -> float:
    return positive_real("step size h", h, StepSizeError, symbol="h")


def _representable_bounds(bound: float) -> dict:
    """Per floating dtype, the largest number of that dtype <= bound, as a Python float (exact in it):
    h = bound * sigmoid(rho) computed in the parameter's dtype then never exceeds the bound (sigmoid <= 1,
    and a product rounded below a representable number stays below it), where the bound itself rounds up
    in float32 (0.2 -> 0.20000000298). Computed once, on the CPU, at construction."""
    out = {}
    for dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
        t = torch.tensor(bound, dtype=dtype)
        if float(t) > bound:
            t = torch.nextafter(t, torch.zeros_like(t))
        out[dtype] = float(t)
    return out


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class Step(Layer):
    """x -> Psi^h_F(x): one step of ``method`` applied to the vector field ``field``.

    ``field``: a ``Field``, or any callable (a function, the user's own ``nn.Module``) taken by the signature
    rule of ``dynnets.function.as_field``: f(t, x) with two required positional parameters, f(x) with one.

    ``h`` is a fixed positive float, or, with ``learn_h=True``, a trainable parameter kept positive by
    construction: h = softplus(rho), or h = h_max * sigmoid(rho) when ``h_max`` is given (so the step
    size can never leave (0, h_max), whatever training does).

    A method that cannot integrate the field is refused here with ``IncompatibleFieldError``; a step
    outside the method's stability region on a fixed field that declares ``stiffness()`` with
    ``StepSizeError`` (and a learned h on such a field is kept below that limit).

    ``step(x, t)``: the step starts at time t (default 0), which only a time-dependent field
    (``field.time_dependent``) uses: its stages are evaluated at t + c_i h. In a Flow each step is given
    the time at which it starts (``Flow.forward(x, t)``).

    Every call refuses, before any work, states that are not a non-empty floating tensor of the dtype and
    device of the field's parameters, or not of the field's shape (``Layer.check_state``,
    ``Field.check_input``), a start time t that is not a finite number or a real tensor of shape () or
    (batch,), and a fixed h that is not finite in the states' dtype (h = 1e39 in float32): all read from
    Python values and tensor metadata, no host synchronisation.
    """

    def __init__(self, field: Field, method: Method, h: float, *, learn_h: bool = False,
                 h_max: float | None = None):
        super().__init__()
        if not isinstance(method, Method):
            raise ConfigTypeError(f"method must be a dynnets.methods.Method, got {type(method).__name__}")
        field = as_field(field)
        method.check(field)
        self.field = field
        self.method = method
        h0 = _check_step_size(h)
        if h_max is not None and learn_h is not True:
            raise ConfigError(f"h_max={h_max!r} bounds a learned step size, but learn_h={learn_h!r} (rule: h_max only "
                              "with learn_h=True; a fixed h is used as given)")
        self.h_max = None if h_max is None else _check_step_size(h_max)
        # a fixed classical field refuses an explicit step outside its stability region; a learned h can
        # only grow up to h_max, so that is the value checked when it is given, and without one a learned
        # h is bounded by the stability limit itself (by construction: h = limit * sigmoid(rho))
        method.check_step(field, h0 if self.h_max is None else max(h0, self.h_max))
        self.learn_h = check_bool("learn_h", learn_h)
        limit = float(method.max_stable_step(field)) if field.fixed else math.inf
        if self.learn_h and self.h_max is None and math.isfinite(limit):
            self.h_max = limit
        if self.h_max is not None and h0 >= self.h_max:
            raise StepSizeError(f"initial step size h={h0} must be below h_max={self.h_max}")
        if self.learn_h:
            if self.h_max is None:
                rho = _inverse_softplus(h0)
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
        """The step from x (starting at time t); ``h``: a per-sample step size instead of the step's own
        (``per_sample``)."""
        self._check_call(x, t)
        if h is not None:
            return self.method.step(self.field, x, self.per_sample(h, x))
        if self.time_dependent:
            return self.method.step(self.field, x, self.h, t)
        return self.method.step(self.field, x, self.h)

    def advance(self, x: torch.Tensor, n: int, h=None) -> torch.Tensor:
        """n applications of this step (``Method.advance``: a method may share work between them)."""
        self._check_call(x, 0.0)
        return self.method.advance(self.field, x, self.h if h is None else self.per_sample(h, x), n)

    def parts_key(self):
        """(q_dim, dim) when this step acts on the parts of a partitioned state (``Method.acts_on_parts``,
        an autonomous field, and the call not redefined by a subclass), else None: consecutive steps with one
        key run on the parts in a Flow."""
        own_call = type(self).forward is Step.forward and type(self).advance is Step.advance
        if self.method.runs_on_parts() and not self.time_dependent and own_call:
            return self.field.partition()[0], self.field.dim
        return None

    def advance_parts(self, q: torch.Tensor, v: torch.Tensor, n: int):
        """``advance`` on the parts of a state whose joined form an earlier step of the same ``parts_key``
        checked: the checks of a call that the parts can fail (dtype and device of this step's parameters,
        h finite in that dtype), then the method's ``advance_parts``."""
        self.check_state(q, self._describe)
        if not self.learn_h:
            check_step_fits(self._h, q.dtype, self._describe)
        return self.method.advance_parts(self.field, q, v, self.h, n)

    def per_sample(self, h, x: torch.Tensor) -> torch.Tensor:
        """h (shape () or (batch,)) for the states x, shaped to broadcast: the step of each row is this step
        with that row's h, so what ``guarantees`` lists holds row by row. Refused (ConfigError) for a method
        without ``per_sample_h`` (its guarantees or its solver depend on one h), a learned h (the given one
        would silently replace it) and a fixed field with a stability limit (checking it would read h)."""
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
        """(x, grad_x) through n applications from their output y alone, this step's parameter gradients
        added to ``grads`` (``Method.reversible_backward``; used by ``memory="reversible"``)."""
        params = [p for p in self.parameters() if p.requires_grad]
        with torch.enable_grad():  # a learned h with its graph (the backward runs without one)
            h = self.h
        if not (isinstance(h, torch.Tensor) and h.requires_grad):
            return self.method.reversible_backward(self.field, y, grad_y, h, n, params, grads)
        # the method sees h as a leaf (each of its VJPs then has a graph of its own), and h's gradient is
        # sent through h = softplus(rho) (or its bounded form) once at the end
        leaf = h.detach().requires_grad_(True)
        x, grad_x = self.method.reversible_backward(self.field, y, grad_y, leaf, n, [*params, leaf], grads)
        h_bar = grads.pop(id(leaf), None)
        if h_bar is not None:
            with torch.enable_grad():
                add_gradients(grads, params, torch.autograd.grad(h, params, h_bar, allow_unused=True))
        return x, grad_x

    @property
    def time_dependent(self) -> bool:
        """Whether the step's result depends on its start time t (a non-autonomous field)."""
        return self.field.time_dependent

    @property
    def duration(self):
        """The time the step advances: h."""
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
        """Certified upper bound of this step's Lipschitz constant (exact norms only); NonFiniteWeightError
        naming the step when a weight it is computed from is not finite."""
        return certified_bound(self._describe(), lambda: self.method.lipschitz_bound(self.field, self.h))

    def extra_repr(self) -> str:
        h = f"{float(self.h if not self.learn_h else self.h.detach()):.4g}" + (" (learned)" if self.learn_h else "")
        return f"method={self.method!r}, h={h}"


class Flow(Layer):
    """x -> s_M(...s_1(x)): a discrete flow (network) of layers: Steps, nested Flows, or any other
    ``Layer`` (a normalisation, a zero padding, a bounded linear head, ...).

    ``Flow.repeat(step, n)`` applies one weight-tied step n times: an ODE solver with a fixed step. Such
    a weight-tied stretch is advanced at once by its method (``Method.advance``; e.g. Stormer-Verlet
    evaluates the field once where one step ends and the next begins), with the result of n steps.
    A Flow's guarantees are derived from its steps (``structure.compose``), its ``lipschitz_bound()`` is
    the product of theirs (``NotCertifiedError`` when one has none). During a forward pass every
    parametrised weight (projection, QR, SVD) and every exact norm derived from it is computed once,
    however many steps use it (``parametrize.cached()``, ``linalg.shared_norms()``).

    ``layers`` holds the distinct modules (their parameters; ``Flow.repeat(step, 20).layers`` has one),
    ``steps`` (or iterating over the Flow) gives the steps in the order they are applied (``len(flow)``
    of them). ``flow(x, t)`` starts at time t (default 0): step k starts at t + h_1 + ... + h_(k-1), which
    time-dependent fields use. ``flow.trajectory(x, t, every=k)`` returns the states after every k-th
    step, ``flow.times(t, every=k)`` their times.

    ``memory`` chooses how the Flow is backpropagated (``dynnets.memory``; the forward values are the
    same in every mode): ``"plain"`` (default) keeps every intermediate state; ``"reversible"`` keeps
    only the output and reconstructs each step's input with its explicit inverse in the backward
    (memory independent of depth; every step must be invertible, else ``NotInvertibleError``);
    ``"checkpoint"`` keeps only every ``checkpoint_every``-th state (default ceil(sqrt(len))) and
    recomputes the segments in between. Under torch.func transforms a Flow always runs plain.
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
        unique: list[nn.Module] = []
        index = []
        for s in steps:
            for k, u in enumerate(unique):
                if u is s:
                    index.append(k)
                    break
            else:
                index.append(len(unique))
                unique.append(s)
        self.layers = nn.ModuleList(unique)
        self._index = tuple(index)
        self._runs = _memory.runs(self._index)  # weight-tied stretches, advanced at once
        # a field's time dependence is a property of its class: looked up once, not on every forward
        self._time_dependent = any(layer.time_dependent for layer in unique)
        self._parts_keys = tuple(layer.parts_key() if isinstance(layer, Step) else None for layer in unique)
        self.memory, every = _memory.check_mode(memory, checkpoint_every)
        self.checkpoint_every = (every or _memory.default_segment(len(index))) if memory == "checkpoint" else None
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
        """The steps in the order they are applied (weight-tied steps appear repeatedly)."""
        return tuple(self.layers[i] for i in self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __iter__(self):
        """The steps in the order they are applied (``steps``)."""
        return iter(self.steps)

    @property
    def time_dependent(self) -> bool:
        """Whether some step's result depends on its start time (a non-autonomous field)."""
        return self._time_dependent

    @property
    def duration(self):
        """The time the flow advances: the sum of its steps' h (a tensor when some h is learned)."""
        per_layer = [layer.duration for layer in self.layers]
        total = 0.0
        for i in self._index:
            total = total + per_layer[i]
        return total

    def forward(self, x: torch.Tensor, t=0.0, h=None) -> torch.Tensor:
        """The flow from x (starting at time t); ``h``: a per-sample step size (shape () or (batch,)) given to
        every step instead of its own (``Step.per_sample``): row i is the flow of that row's h."""
        self._check_call(x, t)
        if h is not None:
            return self._run_per_sample(x, h)
        return self._run(x, self._start_times(t) if self.time_dependent else None, 0, len(self._index))

    def _run_per_sample(self, x: torch.Tensor, h) -> torch.Tensor:
        """Every layer (a Step or a Flow) run with the per-sample h, with ordinary autograd: the memory modes
        reconstruct each step from its own h, so they are refused rather than ignored."""
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
        """x a non-empty floating tensor and t a finite time or a real (batch,)/() tensor, before any work (an
        autonomous flow passes t to no step, so it is checked here); each step checks x's dtype itself."""
        check_state(x, "Flow")
        check_time(t, x, "Flow")

    def _start_times(self, t) -> list:
        """The time each position starts at, then the end time: t plus the durations before it, where a
        weight-tied run of n steps of h starts its j-th step at t_run + j h (one rounding, not j accumulated
        ones: 100 steps of 0.1 from 0 end at 10.0, not 9.99999999999998)."""
        per_layer = [layer.duration for layer in self.layers]
        out = [t]
        for i, count in self._runs:
            run_start, h = out[-1], per_layer[i]
            out.extend(run_start + (h if j == 1 else j * h) for j in range(1, count + 1))
        return out

    def _run(self, x: torch.Tensor, times, start: int, stop: int) -> torch.Tensor:
        """Apply the layers at positions start, ..., stop - 1 to x under the flow's memory mode (weight-tied
        stretches advanced at once, ``Layer.advance``); ``times``: ``_start_times`` for a time-dependent
        flow, else None."""
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
        """``_run`` with ordinary autograd (memory mode ``plain``); ``times``: the start times of positions
        start, ..., stop - 1 for a time-dependent flow."""
        layers = list(self.layers)
        with parametrize.cached(), shared_norms():
            if not self.time_dependent:
                return _apply_on_parts(layers, self._parts_keys, self._stretches(start, stop), x)
            for i, t in zip(self._index[start:stop], times):
                x = layers[i](x, t) if layers[i].time_dependent else layers[i](x)
            return x

    def _stretches(self, start: int, stop: int):
        """The weight-tied stretches of positions start, ..., stop - 1 (``dynnets.memory.runs``)."""
        return self._runs if (start, stop) == (0, len(self._index)) else _memory.runs(self._index[start:stop])

    def reversible_backward(self, y, grad_y, n: int, grads: dict):
        """(x, grad_x) through n applications of this flow from their output y, step by step in reverse
        (as a nested layer of a reversible flow; ``dynnets.memory``)."""
        for _ in range(n):
            y, grad_y = _memory.reverse_runs(list(self.layers), self._runs, y, grad_y, grads)
        return y, grad_y

    def times(self, t=0.0, every: int = 1) -> torch.Tensor:
        """The times of ``trajectory(x, t, every)``'s states: t, then the time after each step recorded
        (every ``every``-th and the last), as the steps receive them (``_start_times``); float64, or a
        differentiable tensor when some step size is learned."""
        every = check_int("every", every, minimum=1, maximum=MAX_STEPS)
        if not isinstance(t, torch.Tensor):
            t = real("Flow.times' start time t", t, symbol="t")
        times, n = self._start_times(t), len(self._index)
        out = [times[k] for k in range(n + 1) if k % every == 0 or k == n]
        if any(isinstance(v, torch.Tensor) for v in out):
            return torch.stack([torch.as_tensor(v, dtype=torch.float64) for v in out])
        return torch.tensor(out, dtype=torch.float64)

    def trajectory(self, x: torch.Tensor, t=0.0, every: int = 1) -> torch.Tensor:
        """The states x_0 = x, x_k, x_2k, ..., x_n (k = ``every``, n = ``len(self)``; the final state is
        always included, so ``trajectory(x)[-1]`` equals ``self(x)``), stacked: shape (m, *x.shape) with
        m = ceil(n / k) + 1. Only these states are kept: the flow runs in segments of k steps, each under
        the flow's memory mode, so with ``memory="reversible"`` or ``"checkpoint"`` the backward stores the
        recorded states and what the mode keeps inside each segment, no more. Times: ``times(t, every)``."""
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
        """The exact inverse map, composed from each step's explicit inverse in reverse order (t: the time
        the flow starts from, as in ``forward``)."""
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
                where = [pos for pos, i in enumerate(self._index) if i == k]
                what = (f"{type(layer.field).__name__} with {layer.method.name}" if isinstance(layer, Step)
                        else "a nested Flow" if isinstance(layer, Flow) else f"a {type(layer).__name__}")
                raise NotInvertibleError(
                    f"{what_needs} needs every step explicitly invertible; step {where[0]} "
                    f"({what}) is not"
                )

    def lipschitz_bound(self) -> float:
        """Product of the steps' certified bounds (each from exact norms); NotCertifiedError naming the
        first step that has none."""
        per_layer = []
        for k, layer in enumerate(self.layers):
            try:
                per_layer.append(float(layer.lipschitz_bound()))
            except (NotCertifiedError, NonFiniteWeightError) as err:
                where = self._index.index(k)
                raise type(err)(f"Flow step {where} ({type(layer).__name__}): {err}") from None
        bound = 1.0
        for i in self._index:
            bound *= per_layer[i]
        return bound

    def extra_repr(self) -> str:
        extra = "" if self.memory == "plain" else f", memory={self.memory}"
        if self.memory == "checkpoint":
            extra += f", checkpoint_every={self.checkpoint_every}"
        return f"steps={len(self)}, distinct={len(self.layers)}{extra}"


def _apply_on_parts(layers, keys, stretches, x: torch.Tensor) -> torch.Tensor:
    """``memory.apply_runs``, except that a run of consecutive steps with one ``Step.parts_key`` works on the
    parts (q, v) of the state: the first step checks and splits x, the others take the parts
    (``Step.advance_parts``), and x is joined once at the run's end. The arithmetic is that of the steps one
    by one (splitting and joining are exact), without a copy of the state per step."""
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
    """A time-dependent step (or flow) bound to the time it starts from, so that the memory modes, which
    call ``layer(x)``, ``layer.inverse(y)`` and ``layer.reversible_backward``, run time-dependent flows
    unchanged (the reversible backward is ``Layer``'s default: the inverse at that time, one VJP)."""

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
    """(the layer at each position, a time-dependent one bound to its start time ``times[k]`` by
    ``_AtTime``; range(len(index)))."""
    bound = [_AtTime(layers[i], t) if layers[i].time_dependent else layers[i] for i, t in zip(index, times)]
    return bound, range(len(bound))
