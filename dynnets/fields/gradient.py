"""Gradient field F(x) = sign * A^T sigma(A x + b) (Celledoni et al. 2022): sign = -1 is -grad V, V convex,
with explicit Euler non-expansive for h <= 2 / (beta ||A||^2) (``gradient_bounds``); sign = +1 is expansive.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from ..base import Field
from ..checks import check_size
from .activations import get_activation
from .gradient_bounds import GradientBounds, check_sign


def dense_weight(width: int, dim: int, init_scale: float) -> torch.Tensor:
    """A ~ N(0, s^2), s = sqrt(init_scale) / (sqrt(dim) + sqrt(width)), so that ||A||_2^2 ~ init_scale."""
    scale = math.sqrt(checks.init_scale(init_scale, positive=True)) / (math.sqrt(dim) + math.sqrt(width))
    return torch.randn(width, dim) * scale


class Gradient(GradientBounds, Field):
    """F(x) = sign * A^T sigma(A x + b), A: (width, dim), b: (width,), sign in {-1, +1}; initialisation
    ``dense_weight``, b = 0."""

    weight_name = "A"

    def __init__(self, dim: int, width: int, sign: int = -1, activation: str = "relu", *,
                 init_scale: float = 0.5):
        super().__init__()
        self.dim = check_size("dim", dim)
        self.width = check_size("width", width)
        self.sign = check_sign(sign)
        self.activation = get_activation(activation)
        self.A = nn.Parameter(dense_weight(width, dim, init_scale))
        self.b = nn.Parameter(torch.zeros(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        out = F.linear(self.activation.fn(F.linear(x, self.A, self.b)), self.A.t())
        return out if self.sign == 1 else -out

    def extra_repr(self) -> str:
        return f"dim={self.dim}, width={self.width}, sign={self.sign:+d}, activation={self.activation.name!r}"
