"""A fixed field given by a function, for integrating callables (a decomposition's parts, a test field)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..base import Field
from ..checks import check_size
from ..errors import ConfigTypeError


class FunctionField(Field):
    """F(x) = fn(x) for a callable on (batch, dim) states; no parameters, no traits (it claims nothing)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], dim: int):
        super().__init__()
        if not callable(fn):
            raise ConfigTypeError(f"FunctionField needs a callable, got {type(fn).__name__}")
        self.fn = fn
        self.dim = check_size("dim", dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.fn(x)

    def extra_repr(self) -> str:
        return f"fn={getattr(self.fn, '__name__', type(self.fn).__name__)}, dim={self.dim}"
