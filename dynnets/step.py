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
from .base import Field, Layer, Method, add_gradients
from .checks import MAX_STEPS, check_bool, check_int, positive_real
from .errors import ConfigError, ConfigTypeError, NotCertifiedError, NotInvertibleError, StepSizeError
from .linalg import shared_norms


def _check_step_size(h) -> float:
    return positive_real("step size h", h, StepSizeError, symbol="h")


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class Step(Layer):
    """x -> Psi^h_F(x): one step of ``method`` applied to the vector field ``field``.

    ``h`` is a fixed positive float, or, with ``learn_h=True``, a trainable parameter kept positive by
    construction: h = softplus(rho), or h = h_max * sigmoid(rho) when ``h_max`` is given (so the step
    size can never leave (0, h_max), whatever training does).

    A method that cannot integrate the field is refused here with ``IncompatibleFieldError``; a step
    outside the method's stability region on a fixed field that declares ``stiffness()`` with
    ``StepSizeError`` (and a learned h on such a field is kept below that limit).
    """

    def __init__(self, field: Field, method: Method, h: float, *, learn_h: bool = False,
                 h_max: float | None = None):
        super().__init__()
        if not isinstance(method, Method):
            raise ConfigTypeError(f"method must be a dynnets.methods.Method, got {type(method).__name__}")
        method.check(field)
        self.field = field
        self.method = method
        h0 = _check_step_size(h)
        self.h_max = None if h_max is None else _check_step_size(h_max)
        # a fixed classical field refuses an explicit step outside its stability region; a learned h can
        # only grow up to h_max, so that is the value checked when it is given, and without one a learned
        # h is bounded by the stability limit itself (by construction: h = limit * sigmoid(rho))
        method.check_step(field, h0 if self.h_max is None else max(h0, self.h_max))
        self.learn_h = check_bool("learn_h", learn_h)
        limit = float(method.max_stable_step(field))
        if self.learn_h and self.h_max is None and math.isfinite(limit):
            self.h_max = limit
        if self.h_max is not None and h0 >= self.h_max:
            raise StepSizeError(f"initial step size h={h0} must be below h_max={self.h_max}")
        if self.learn_h:
            if self.h_max is None:
                rho = _inverse_softplus(h0)
            else:
                rho = math.log(h0 / (self.h_max - h0))
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
        return self.h_max * torch.sigmoid(self.h_raw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.method.step(self.field, x, self.h)

    def advance(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """n applications of this step (``Method.advance``: a method may share work between them)."""
        return self.method.advance(self.field, x, self.h, n)

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
    def guarantees(self) -> frozenset:
        return self.method.guarantees(self.field, self.h)

    @property
    def invertible(self) -> bool:
        return self.method.invertible(self.field)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return self.method.inverse(self.field, y, self.h)

    def lipschitz_bound(self) -> float:
        """Certified upper bound of this step's Lipschitz constant (exact norms only)."""
        return float(self.method.lipschitz_bound(self.field, self.h))

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
        self.memory, every = _memory.check_mode(memory, checkpoint_every)
        self.checkpoint_every = (every or _memory.default_segment(len(index))) if memory == "checkpoint" else None
        if memory == "reversible":
            self._refuse_non_invertible("memory='reversible'")

    @classmethod
    def integrator(cls, field: Field, method: Method, t: float, steps: int, **options) -> Flow:
        """The time-t map of ``field`` by ``steps`` weight-tied steps of ``method`` (h = t / steps)."""
        steps = check_int("steps", steps, minimum=1, maximum=MAX_STEPS)
        return cls.repeat(Step(field, method, positive_real("time t", t) / steps), steps, **options)

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers = list(self.layers)
        if self.memory != "plain" and torch.is_grad_enabled() and not _memory.transforms_active():
            if self.memory == "reversible":
                return _memory.run_reversible(layers, self._runs, x)
            return _memory.run_checkpointed(layers, self._index, x, self.checkpoint_every)
        with parametrize.cached(), shared_norms():
            return _memory.apply_runs(layers, self._runs, x)

    def reversible_backward(self, y, grad_y, n: int, grads: dict):
        """(x, grad_x) through n applications of this flow from their output y, step by step in reverse
        (as a nested layer of a reversible flow; ``dynnets.memory``)."""
        for _ in range(n):
            y, grad_y = _memory.reverse_runs(list(self.layers), self._runs, y, grad_y, grads)
        return y, grad_y

    @property
    def guarantees(self) -> frozenset:
        per_layer = [layer.guarantees for layer in self.layers]
        return structure.compose(per_layer[i] for i in self._index)

    @property
    def invertible(self) -> bool:
        return all(layer.invertible for layer in self.layers)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """The exact inverse map, composed from each step's explicit inverse in reverse order."""
        self._refuse_non_invertible("Flow.inverse")
        layers = list(self.layers)
        for i in reversed(self._index):
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
            except NotCertifiedError as err:
                where = self._index.index(k)
                raise NotCertifiedError(f"Flow step {where} ({type(layer).__name__}): {err}") from None
        bound = 1.0
        for i in self._index:
            bound *= per_layer[i]
        return bound

    def extra_repr(self) -> str:
        extra = "" if self.memory == "plain" else f", memory={self.memory}"
        if self.memory == "checkpoint":
            extra += f", checkpoint_every={self.checkpoint_every}"
        return f"steps={len(self)}, distinct={len(self.layers)}{extra}"
