"""The fixed gradient field whose explicit Euler step with h = 1 is the MaxMin (GroupSort2) activation (Anil,
Lucas, Grosse, ICML 2019): h = 1 is its contractive limit 2 / (beta ||A||^2), certified bound 1
(docs/lipschitz.md)."""

from __future__ import annotations

import math

import torch

from ..base import Field
from ..checks import check_size
from ..errors import ConfigError, ShapeError
from .activations import get_activation
from .gradient_bounds import GradientBounds


class MaxMin(GradientBounds, Field):
    """F(x) = -A^T relu(A x) with A the pair-difference matrix on the ``size`` features along ``axis``
    (-1 for vectors (..., size), -3 for the channels of images (..., C, H, W)); no parameters."""

    sign = -1

    def __init__(self, size: int, axis: int = -1):
        super().__init__()
        self.size = check_size("size", size)
        if self.size % 2:
            raise ConfigError(f"MaxMin pairs features, so it needs an even size, got size={size}")
        if axis not in (-1, -3):
            raise ConfigError(f"MaxMin pairs features along axis -1 (vectors) or -3 (image channels), got {axis}")
        self.axis = axis
        self.dim = self.size
        self.state_ndim = -axis  # vectors (..., size) or images (..., C, H, W)
        self.activation = get_activation("relu")

    def check_input(self, x: torch.Tensor) -> None:
        if x.dim() < -self.axis or x.shape[self.axis] != self.size:
            raise ShapeError(f"MaxMin expects {self.size} features along axis {self.axis}, got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        xs = x.movedim(self.axis, -1)
        pairs = xs.reshape(*xs.shape[:-1], self.size // 2, 2)
        d = torch.relu(pairs[..., 1] - pairs[..., 0])
        return torch.stack((d, -d), dim=-1).reshape(xs.shape).movedim(-1, self.axis)

    def spectral_bounds(self, dtype=None):
        """Exact (s_min, s_max) of the pair-difference matrix: its rows are orthogonal with norm sqrt 2."""
        dtype = dtype or torch.get_default_dtype()
        return torch.zeros((), dtype=dtype), torch.tensor(math.sqrt(2.0), dtype=dtype)

    def extra_repr(self) -> str:
        return f"size={self.size}, axis={self.axis}"
