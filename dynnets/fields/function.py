"""A fixed field given by a function or a user's own ``nn.Module``: F(x) = fn(x), or F(t, x) = fn(t, x)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..base import Field
from ..checks import check_bool, check_size
from ..errors import ConfigTypeError, DtypeError, ShapeError


class FunctionField(Field):
    """F(x) = fn(x), or with ``time_dependent=True`` F(t, x) = fn(t, x) (torchdiffeq's convention; t a 0-d
    tensor, or (batch,)) for any callable on (batch, ...) states (an ``nn.Module``'s parameters train).
    No traits, no certified bound. ``dim`` (optional) fixes the last axis. Every output must have the
    input's shape and dtype (``ShapeError``, ``DtypeError``).
    """

    def __init__(self, fn: Callable, dim: int | None = None, *, time_dependent: bool = False):
        super().__init__()
        if not callable(fn):
            raise ConfigTypeError(f"FunctionField needs a callable, got {type(fn).__name__}")
        self.fn = fn
        self.dim = None if dim is None else check_size("dim", dim)
        self.state_ndim = None if dim is None else 1
        self.time_dependent = check_bool("time_dependent", time_dependent)

    def check_input(self, x: torch.Tensor) -> None:
        if self.dim is not None:
            super().check_input(x)

    def forward(self, *args) -> torch.Tensor:
        x = args[-1]
        self.check_input(x)
        out = self.fn(*args)
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ShapeError(f"FunctionField's function returned {shape} for a state of shape {tuple(x.shape)} "
                             "(rule: F(x) has the shape of x)")
        if out.dtype != x.dtype:
            raise DtypeError(f"FunctionField's function returned {out.dtype} for a state of {x.dtype} (rule: F(x) "
                             "has the dtype of x)")
        return out

    def extra_repr(self) -> str:
        timed = ", time_dependent=True" if self.time_dependent else ""
        return f"fn={getattr(self.fn, '__name__', type(self.fn).__name__)}, dim={self.dim}{timed}"
