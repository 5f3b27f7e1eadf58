"""How a Flow is backpropagated: ``plain``, ``reversible`` or ``checkpoint`` (``Flow(steps, memory=...)``).

* ``plain``: ordinary autograd; every step's intermediate tensors are kept, memory grows with depth.
* ``reversible``: constant memory in depth for explicitly invertible steps. The forward keeps only the
  output; the backward walks the steps in reverse, reconstructs each step's input from its output with
  the step's explicit inverse (``x_k = Psi^{-1}(x_{k+1})``), recomputes that one step with autograd and
  backpropagates through it (vector-Jacobian product w.r.t. the input and that step's parameters,
  including a learned step size). This is the idea of reversible residual networks (Gomez et al. 2017)
  and reversible solvers; unlike the continuous adjoint the gradient is that of the discrete network,
  exact up to the round-off of the reconstruction (the inverse of each step is exact in exact
  arithmetic; in floating point the reconstruction error accumulates with depth, see docs/memory.md).
* ``checkpoint``: for any flow, ``torch.utils.checkpoint`` (non-reentrant) over segments of k steps:
  only segment boundaries are kept, each segment is recomputed once in the backward.

Both memory-saving modes concern ``.backward()``/``torch.autograd.grad`` only. Under ``torch.func``
transforms (``jacrev``, ``vmap``, ... as used by ``dn.testing``) a Flow runs in plain mode: the numbers
are identical, the memory saving is not available there (a custom autograd Function would need a
functorch vmap rule and a backward written with ``torch.func.vjp``).
"""

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable
from torch.utils.checkpoint import checkpoint

from .checks import MAX_STEPS, check_int
from .errors import ConfigError
from .testing import inverse_defect

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


def run_checkpointed(layers, index, x: torch.Tensor, every: int) -> torch.Tensor:
    """Apply ``layers[i] for i in index`` to x, checkpointing each segment of ``every`` steps."""

    def segment(chunk):
        def run(z):
            for i in chunk:
                z = layers[i](z)
            return z

        return run

    for start in range(0, len(index), every):
        chunk = index[start:start + every]
        if torch.is_grad_enabled():
            x = checkpoint(segment(chunk), x, use_reentrant=False)
        else:
            x = segment(chunk)(x)
    return x


class _ReversibleFlow(torch.autograd.Function):
    """y = layers[index[-1]](...layers[index[0]](x)); saves only y; backward by reconstruction.

    ``params`` are the distinct trainable parameters of all layers, passed as inputs so that autograd
    routes their gradients here; ``owners[k]`` lists, for layer k, the positions in ``params`` of its
    parameters, so that a parameter used by several steps (weight tying) accumulates every contribution.
    """

    @staticmethod
    def forward(ctx, layers, index, owners, x, *params):
        y = x
        for i in index:
            y = layers[i](y)
        ctx.layers, ctx.index, ctx.owners = layers, index, owners
        ctx.save_for_backward(y)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y):
        (y,) = ctx.saved_tensors
        layers, index, owners = ctx.layers, ctx.index, ctx.owners
        grads: list[torch.Tensor | None] = [None] * (len(ctx.needs_input_grad) - 4)
        for i in reversed(index):
            layer = layers[i]
            with torch.no_grad():
                x_prev = layer.inverse(y)
            mine = owners[i]
            with torch.enable_grad():
                x_in = x_prev.detach().requires_grad_(True)
                local = [p for p, _ in mine]
                out = layer(x_in)
                got = torch.autograd.grad(out, [x_in, *local], grad_y, allow_unused=True)
            grad_y = got[0]
            for (_, pos), g in zip(mine, got[1:], strict=True):
                if g is not None:
                    grads[pos] = g if grads[pos] is None else grads[pos] + g
            y = x_prev
        return (None, None, None, grad_y, *grads)


def run_reversible(layers, index, x: torch.Tensor) -> torch.Tensor:
    """Apply the flow with constant-memory backpropagation (every layer must be explicitly invertible)."""
    layers = tuple(layers)
    params: list[torch.nn.Parameter] = []
    where: dict[int, int] = {}
    owners = []
    for layer in layers:
        mine = []
        for p in layer.parameters():
            if not p.requires_grad:
                continue
            if id(p) not in where:
                where[id(p)] = len(params)
                params.append(p)
            mine.append((p, where[id(p)]))
        owners.append(tuple(mine))
    return _ReversibleFlow.apply(layers, tuple(index), tuple(owners), x, *params)


def reconstruction_error(flow, x: torch.Tensor) -> float:
    """max_i ||flow.inverse(flow(x))_i - x_i|| / max(1, ||x_i||), computed in x's own dtype
    (``dn.testing.inverse_defect`` with ``dtype=None``).

    This is the error with which ``memory="reversible"`` reconstructs the input of the first step in
    the backward (later steps' inputs are reconstructed at least as well, roughly); gradients inherit an
    error of about this relative size. Check it in the dtype you train in: it is at round-off for
    well-conditioned steps, but grows with depth, step size and the steps' expansion (measured
    figures in docs/memory.md).
    """
    return inverse_defect(flow, flow.inverse, x, dtype=None)


class SavedTensorMeter:
    """Counts the bytes of tensors autograd keeps for the backward, live and at their peak.

    A context manager over ``torch.autograd.graph.saved_tensors_hooks``: every tensor saved for the
    backward while it is active (in the forward, and in a backward run inside it, e.g. the local
    recomputation of ``memory="reversible"``) is counted once per storage until the graph releases it.
    Parameters are excluded (they exist whether or not one backpropagates). Not counted: tensors that
    ``torch.utils.checkpoint`` keeps under its own hooks, and allocator overhead; measure process
    memory (e.g. peak RSS) for those.
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
