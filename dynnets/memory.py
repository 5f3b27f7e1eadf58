"""How a Flow is backpropagated: ``plain``, ``reversible`` or ``checkpoint`` (``Flow(steps, memory=...)``).

* ``plain``: ordinary autograd; every step's intermediate tensors are kept, memory grows with depth.
* ``reversible``: constant memory in depth for explicitly invertible steps. The forward keeps only the
  output; the backward walks the steps in reverse, reconstructs each step's input from its output with
  the step's explicit inverse (``x_k = Psi^{-1}(x_{k+1})``) and backpropagates through that one step
  (vector-Jacobian product w.r.t. the input and that step's parameters, including a learned step size):
  ``Method.reversible_backward``, by default the inverse then the step recomputed with autograd; the
  partitioned methods take the VJP at the inverse's own field evaluations instead (no recomputation),
  so their backward costs about one forward plus one VJP. This is the idea of reversible residual
  networks (Gomez et al. 2017)
  and reversible solvers; unlike the continuous adjoint the gradient is that of the discrete network,
  exact up to the round-off of the reconstruction (the inverse of each step is exact in exact
  arithmetic; in floating point the reconstruction error accumulates with depth, see docs/memory.md).
* ``checkpoint``: for any flow, segments of k steps that run without recording a graph (``_Segment``, a
  custom autograd Function): only segment boundaries are kept, each segment is recomputed once in the
  backward with a graph, and its vector-Jacobian product w.r.t. its input, start time and the parameters
  of its layers is taken there (Chen et al. 2016). A tensor a layer reads that is neither its input nor
  one of its ``parameters()`` gets no gradient through a checkpointed segment (as in reversible mode).

In every mode a weight-tied stretch of one layer (``Flow.repeat``) is advanced at once (``runs``,
``Step.advance``, ``Method.advance``), so a method can share field evaluations between its steps.

Both memory-saving modes concern ``.backward()``/``torch.autograd.grad`` only. Under ``torch.func``
transforms (``jacrev``, ``vmap``, ... as used by ``dn.testing``) a Flow runs in plain mode: the numbers
are identical, the memory saving is not available there (a custom autograd Function would need a
functorch vmap rule and a backward written with ``torch.func.vjp``).
"""

from __future__ import annotations

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
            raise ConfigError(
                f"checkpoint_every={checkpoint_every!r} only applies to memory='checkpoint', "
                f"got memory={memory!r}"
            )
        check_int("checkpoint_every", checkpoint_every, minimum=1, maximum=MAX_STEPS)
    return memory, checkpoint_every


def default_segment(n: int) -> int:
    """ceil(sqrt(n)) steps per segment: about 2 sqrt(n) stored states, one extra forward (Chen et al. 2016)."""
    return max(1, math.ceil(math.sqrt(n)))


def transforms_active() -> bool:
    """True inside a torch.func transform (vmap, grad, jacrev, jvp, ...)."""
    probe = getattr(torch._C, "_are_functorch_transforms_active", None)
    return bool(probe()) if probe is not None else False


def runs(index) -> tuple[tuple[int, int], ...]:
    """The layer sequence ``index`` as (layer, count) pairs of consecutive repeats: the weight-tied
    stretches a method may advance at once."""
    out: list[list[int]] = []
    for i in index:
        if out and out[-1][0] == i:
            out[-1][1] += 1
        else:
            out.append([i, 1])
    return tuple((i, count) for i, count in out)


def apply_runs(layers, stretches, x: torch.Tensor) -> torch.Tensor:
    """Apply (layer, count) stretches: a single application is a module call, a longer stretch one
    ``advance(x, count)`` of the layer."""
    for i, count in stretches:
        x = layers[i](x) if count == 1 else layers[i].advance(x, count)
    return x


def reverse_runs(layers, stretches, y: torch.Tensor, grad_y: torch.Tensor, grads: dict):
    """Backpropagate through (layer, count) stretches from their output y alone (``reversible``): each layer
    reconstructs its input and takes its vector-Jacobian product (``reversible_backward``), adding its
    parameters' gradients to ``grads`` (by ``id``). Returns (x, grad_x)."""
    for i, count in reversed(stretches):
        y, grad_y = layers[i].reversible_backward(y, grad_y, count, grads)
    return y, grad_y


def trainable(layers) -> list[torch.nn.Parameter]:
    """The distinct parameters of ``layers`` that require grad, in order of first appearance (a parameter
    shared by several layers, e.g. by weight tying, once)."""
    params: list[torch.nn.Parameter] = []
    seen: set[int] = set()
    for layer in layers:
        for p in layer.parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                params.append(p)
    return params


def run_checkpointed(run, layers, index, x: torch.Tensor, times, every: int) -> torch.Tensor:
    """Apply ``layers[i] for i in index`` to x in segments of ``every`` steps, each a ``_Segment``: run
    without a graph, keeping only its input, and recomputed once in the backward.

    ``run(z, segment_times, start, stop)`` applies the positions start, ..., stop - 1 of ``index`` to z
    without any memory saving. ``times``: the start time of each position (aligned with ``index``) when
    the flow is time-dependent, else None; a segment receives its own, as a tensor input when some are
    tensors (learned step sizes: their gradient flows through it), else as numbers.
    """
    n = len(index)
    for start in range(0, n, every):
        stop = min(start + every, n)
        chunk = index[start:stop]
        params = trainable(layers[i] for i in dict.fromkeys(chunk))
        segment_times = None if times is None else _segment_times(times[start:stop])
        x = _Segment.apply(run, (start, stop), x, segment_times, *params)
    return x


def _segment_times(times: list):
    """A segment's start times: one float64 tensor when some are tensors (differentiable), else a tuple."""
    if any(isinstance(t, torch.Tensor) for t in times):
        return torch.stack([torch.as_tensor(t, dtype=torch.float64) for t in times])
    return tuple(times)


class _Segment(torch.autograd.Function):
    """y = run(x, t, *span) computed without recording a graph; the backward recomputes it with one and
    returns the vector-Jacobian product w.r.t. x, t (when a tensor) and ``params``.

    ``params`` are the trainable parameters of the segment's layers, passed as inputs so that autograd
    routes their gradients here (from ``.backward()`` and ``torch.autograd.grad`` alike, whether or not x
    requires grad). The start time t is an input too: with learned step sizes it depends on the earlier
    steps' h. Under ``create_graph=True`` the recomputation stays attached to x, t and the parameters, so
    the gradient can be differentiated again.

    Why not ``torch.utils.checkpoint``: its non-reentrant variant records every operation's autograd
    node in the forward. With glibc's default allocator these small long-lived allocations land in the
    chunks freed by the steps' temporary tensors, so each of them pins a tensor-sized hole: after the
    forward of 1000 distinct RK4 steps (Dense(64, 64), batch 256) the heap held 1764 MiB, 169 MiB of it
    live, more than plain backprop's whole growth (1185 MiB); docs/memory.md. Its reentrant variant
    records nothing, but returns no parameter gradient to ``torch.autograd.grad`` and none at all unless
    an input requires grad.
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
        # create_graph=True runs this backward with grad mode on: keep the recomputation attached to the
        # saved inputs; otherwise start it from leaves, so that nothing outside the segment is touched
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
    """Run without the cache of an enclosing ``torch.nn.utils.parametrize.cached()`` context.

    That cache is one module-wide dict, filled by whichever evaluation of a parametrized weight comes
    first. The memory modes evaluate their steps without a graph (forward) or with a graph of their own
    (backward): a weight cached there would be handed to a plain step elsewhere in the network that shares
    the field, which would then silently get no gradient through it. torch has no public switch for
    this, so the module's two globals are set aside for the duration (tests/core/test_memory.py checks it).
    """
    state = parametrize._cache_enabled, parametrize._cache
    parametrize._cache_enabled, parametrize._cache = 0, {}
    try:
        yield
    finally:
        parametrize._cache_enabled, parametrize._cache = state


class _Replay:
    """The random-number and autocast state at a segment's forward, restored for its recomputation (as
    ``torch.utils.checkpoint`` does), so that a field that draws random numbers or runs under autocast is
    recomputed exactly."""

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
    """y = the layers applied by (layer, count) stretches to x; saves only y; backward by reconstruction.

    ``params`` are the distinct trainable parameters of all layers, passed as inputs so that autograd
    routes their gradients here; the layers add their gradients by parameter identity, so a parameter used
    by several steps (weight tying) accumulates every contribution.
    """

    @staticmethod
    def forward(ctx, layers, stretches, x, *params):
        with own_parametrization_cache():
            y = apply_runs(layers, stretches, x)
        ctx.layers, ctx.stretches, ctx.params = layers, stretches, params
        ctx.save_for_backward(y)
        return y

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


class SavedTensorMeter:
    """Counts the bytes of tensors autograd keeps for the backward, live and at their peak.

    A context manager over ``torch.autograd.graph.saved_tensors_hooks``: every tensor saved for the
    backward while it is active (in the forward, and in a backward run inside it, e.g. the local
    recomputation of ``memory="reversible"`` or of a ``memory="checkpoint"`` segment) is counted once per
    storage until the graph releases it. Parameters are excluded (they exist whether or not one
    backpropagates). Not counted: tensors that ``torch.utils.checkpoint`` keeps under its own hooks,
    transient tensors that are never saved, and allocator overhead (heap caching and fragmentation);
    measure process memory (peak RSS, ``benchmarks.memory``) for those.
    """

    def __init__(self, exclude=()):
        self._exclude = {p.untyped_storage().data_ptr() for p in exclude}
        self._live: dict[int, list] = {}
        self.live = 0
        self.peak = 0
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    def __enter__(self):
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        return self._hooks.__exit__(*exc)

    def _pack(self, t: torch.Tensor):
        storage = t.untyped_storage()
        key = storage.data_ptr()
        if key in self._exclude or storage.nbytes() == 0:
            return t
        return _Held(self, t, key, storage.nbytes())

    @staticmethod
    def _unpack(held):
        return held.tensor if isinstance(held, _Held) else held

    def _add(self, key: int, nbytes: int) -> None:
        entry = self._live.get(key)
        if entry is None:
            self._live[key] = [1, nbytes]
            self.live += nbytes
            self.peak = max(self.peak, self.live)
        else:
            entry[0] += 1

    def _release(self, key: int) -> None:
        entry = self._live[key]
        entry[0] -= 1
        if entry[0] == 0:
            self.live -= entry[1]
            del self._live[key]


class _Held:
    """A saved tensor plus the bookkeeping that releases its bytes when autograd drops it."""

    __slots__ = ("key", "meter", "tensor")

    def __init__(self, meter: SavedTensorMeter, tensor: torch.Tensor, key: int, nbytes: int):
        self.meter, self.tensor, self.key = meter, tensor, key
        meter._add(key, nbytes)

    def __del__(self):
        self.meter._release(self.key)
