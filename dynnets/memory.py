"""How a Flow is backpropagated (``Flow(steps, memory=...)``): ``plain`` (ordinary autograd), ``reversible``
(the backward reconstructs each step's input with its inverse, ``Method.reversible_backward``; Gomez et al.
2017) or ``checkpoint`` (segments run without a graph, ``_Segment``, recomputed once in the backward; Chen et
al. 2016). In both saving modes a tensor a layer reads that is neither its input nor one of its
``parameters()`` gets no gradient. See docs/memory.md.
"""

from __future__ import annotations

import itertools
import math
from contextlib import ExitStack, contextmanager

import torch
from torch.autograd.function import once_differentiable
from torch.nn.utils import parametrize

from .checks import MAX_STEPS, check_int
from .errors import ConfigError

MODES = ("plain", "reversible", "checkpoint")


def check_mode(memory, checkpoint_every) -> tuple[str, int | None]:
    """Validate ``memory`` and ``checkpoint_every`` (which only ``memory="checkpoint"`` accepts)."""
    if memory not in MODES:
        raise ConfigError(f"memory must be one of {', '.join(MODES)}; got memory={memory!r}")
    if checkpoint_every is not None:
        if memory != "checkpoint":
            raise ConfigError(f"checkpoint_every={checkpoint_every!r} only applies to memory='checkpoint', "
                              f"got memory={memory!r}")
        check_int("checkpoint_every", checkpoint_every, minimum=1, maximum=MAX_STEPS)
    return memory, checkpoint_every


def default_segment(n: int, per_step: float = 1.0) -> int:
    """ceil(sqrt(n / per_step)) steps per segment, minimising n / k + k per_step stored states (a step's
    graph holding ``per_step`` states)."""
    return max(1, math.ceil(math.sqrt(n / per_step)))


def transforms_active() -> bool:
    """True inside a torch.func transform (vmap, grad, jacrev, jvp, ...)."""
    return torch._C._are_functorch_transforms_active()


def runs(index) -> tuple[tuple[int, int], ...]:
    """``index`` as (layer, count) pairs of consecutive repeats (weight-tied stretches)."""
    return tuple((i, len(list(group))) for i, group in itertools.groupby(index))


def reverse_runs(layers, stretches, y: torch.Tensor, grad_y: torch.Tensor, grads: dict):
    """Backpropagate through stretches from their output y alone (``reversible_backward`` per layer, gradients
    added to ``grads`` by ``id``). Returns (x, grad_x)."""
    for i, count in reversed(stretches):
        y, grad_y = layers[i].reversible_backward(y, grad_y, count, grads)
    return y, grad_y


def trainable(layers) -> list[torch.nn.Parameter]:
    """The distinct parameters of ``layers`` that require grad, in order of first appearance."""
    return list({id(p): p for layer in layers for p in layer.parameters() if p.requires_grad}.values())


def run_checkpointed(run, layers, index, x: torch.Tensor, times, every: int) -> torch.Tensor:
    """Apply ``layers[i] for i in index`` to x in ``_Segment``s of ``every`` steps. ``run(z, segment_times,
    start, stop)`` applies positions start, ..., stop - 1 plainly; ``times``: each position's start time
    (time-dependent flow) or None."""
    n = len(index)
    for start in range(0, n, every):
        stop = min(start + every, n)
        params = trainable(layers[i] for i in dict.fromkeys(index[start:stop]))
        segment_times = None if times is None else stack_times(times[start:stop])
        x = _Segment.apply(run, (start, stop), x, segment_times, *params)
    return x


def stack_times(times: list):
    """Start times as one float64 tensor when some are tensors (differentiable), else a tuple."""
    if any(isinstance(t, torch.Tensor) for t in times):
        return torch.stack([torch.as_tensor(t, dtype=torch.float64) for t in times])
    return tuple(times)


class _Segment(torch.autograd.Function):
    """y = run(x, t, *span) without a graph; the backward recomputes it and returns the VJP w.r.t. x, t (a
    tensor when step sizes are learned) and ``params`` (the segment's trainable parameters, inputs so that
    autograd routes their gradients here). Supports ``create_graph=True``. Not ``torch.utils.checkpoint``:
    its non-reentrant variant fragments the heap, its reentrant one drops parameter gradients (docs/memory.md).
    """

    @staticmethod
    def forward(ctx, run, span, x, t, *params):
        ctx.run, ctx.span, ctx.replay = run, span, _Replay(x)
        ctx.t = None if isinstance(t, torch.Tensor) else t
        ctx.save_for_backward(x, t if ctx.t is None else None, *params)
        with own_parametrization_cache():
            return run(x, t, *span)

    @staticmethod
    def backward(ctx, grad_y):
        x, t, *params = ctx.saved_tensors
        t = ctx.t if t is None else t
        need = ctx.needs_input_grad[2:]
        # create_graph=True: stay attached to the saved inputs; otherwise recompute from leaves
        attached = torch.is_grad_enabled()
        if not attached:
            x = x.detach().requires_grad_(need[0])
            if isinstance(t, torch.Tensor):
                t = t.detach().requires_grad_(need[1])
        with torch.enable_grad(), ctx.replay(), own_parametrization_cache():
            y = ctx.run(x, t, *ctx.span)
        wrt = [v for v, wanted in zip((x, t, *params), need, strict=True) if wanted]
        grads = iter(torch.autograd.grad(y, wrt, grad_y, allow_unused=True, create_graph=attached)
                     if y.requires_grad else [None] * len(wrt))
        return (None, None, *(next(grads) if wanted else None for wanted in need))


@contextmanager
def own_parametrization_cache():
    """Run without the cache of an enclosing ``parametrize.cached()`` (a weight cached without a graph would
    give a plain step sharing the field no gradient); torch has no public switch, so its globals are set aside."""
    state = parametrize._cache_enabled, parametrize._cache
    parametrize._cache_enabled, parametrize._cache = 0, {}
    try:
        yield
    finally:
        parametrize._cache_enabled, parametrize._cache = state


class _Replay:
    """The RNG and autocast state at a segment's forward, restored for its exact recomputation."""

    def __init__(self, x: torch.Tensor):
        self.cpu_rng = torch.get_rng_state()
        self.device = x.device if x.is_cuda else None
        self.device_rng = None if self.device is None else torch.cuda.get_rng_state(self.device)
        self.autocast = {kind: (torch.is_autocast_enabled(kind), torch.get_autocast_dtype(kind))
                         for kind in {"cpu", x.device.type} if torch.amp.is_autocast_available(kind)}

    @contextmanager
    def __call__(self):
        with ExitStack() as stack:
            stack.enter_context(torch.random.fork_rng(devices=[] if self.device is None else [self.device]))
            torch.set_rng_state(self.cpu_rng)
            if self.device is not None:
                torch.cuda.set_rng_state(self.device_rng, self.device)
            for kind, (enabled, dtype) in self.autocast.items():
                stack.enter_context(torch.autocast(kind, dtype=dtype, enabled=enabled))
            yield


class _ReversibleFlow(torch.autograd.Function):
    """y = the stretches applied to x (a longer stretch by one ``advance``); saves only y; backward by
    reconstruction. ``params``: the distinct trainable parameters (inputs, so autograd routes their gradients
    here; tied ones accumulate)."""

    @staticmethod
    def forward(ctx, layers, stretches, x, *params):
        with own_parametrization_cache():
            for i, count in stretches:
                x = layers[i](x) if count == 1 else layers[i].advance(x, count)
        ctx.layers, ctx.stretches, ctx.params = layers, stretches, params
        ctx.save_for_backward(x)
        return x

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y):
        (y,) = ctx.saved_tensors
        grads: dict = {}
        with own_parametrization_cache():
            _, grad_x = reverse_runs(ctx.layers, ctx.stretches, y, grad_y, grads)
        return (None, None, grad_x, *(grads.get(id(p)) for p in ctx.params))


def run_reversible(layers, stretches, x: torch.Tensor) -> torch.Tensor:
    """Apply the flow with constant-memory backpropagation (every layer must be explicitly invertible)."""
    layers = tuple(layers)
    return _ReversibleFlow.apply(layers, tuple(stretches), x, *trainable(layers))


class SavedTensorMeter(torch.autograd.graph.saved_tensors_hooks):
    """Counts the bytes of tensors autograd saves for the backward (once per storage, until released), live
    and at peak, as a context manager. Excluded: ``exclude`` (parameters), tensors ``torch.utils.checkpoint``
    hides, transients and allocator overhead (peak RSS: ``benchmarks.memory``).
    """

    def __init__(self, exclude=()):
        super().__init__(self._pack, self._unpack)
        self._exclude = {p.untyped_storage().data_ptr() for p in exclude}
        self._live: dict[int, list] = {}
        self.live = self.peak = 0

    def __enter__(self):
        super().__enter__()
        return self

    def _pack(self, t: torch.Tensor):
        storage = t.untyped_storage()
        key = storage.data_ptr()
        if key in self._exclude or storage.nbytes() == 0:
            return t
        return _Held(self, t, key, storage.nbytes())

    @staticmethod
    def _unpack(held):
        return held.tensor if isinstance(held, _Held) else held


class _Held:
    """A saved tensor plus the bookkeeping that releases its bytes when autograd drops it."""

    __slots__ = ("key", "meter", "tensor")

    def __init__(self, meter: SavedTensorMeter, tensor: torch.Tensor, key: int, nbytes: int):
        self.meter, self.tensor, self.key = meter, tensor, key
        entry = meter._live.setdefault(key, [0, nbytes])
        if entry[0] == 0:
            meter.live += nbytes
            meter.peak = max(meter.peak, meter.live)
        entry[0] += 1

    def __del__(self):
        entry = self.meter._live[self.key]
        entry[0] -= 1
        if entry[0] == 0:
            self.meter.live -= entry[1]
            del self.meter._live[self.key]
