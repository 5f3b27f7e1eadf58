"""Sphere-preserving field F(x) = S(x) x with S(x) skew-symmetric: d/dt ||x||^2 = 2 x^T S(x) x = 0."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..structure import SkewProduct
from ._pairs import skew_basis
from .activations import get_activation
from .base import Field, check_size


class SpherePreserving(Field):
    """F(x) = S(x) x, S(x) = M(x) - M(x)^T, with the strictly upper triangle of M(x) given by
    V^T Sigma(W x + w) (W: (width, dim), V: (width, dim (dim - 1) / 2)). S(x) is built by placing
    +-entries, so it is skew-symmetric exactly in floating point. Needs dim >= 2.

    ``skew(x)`` returns S(x), shape (batch, dim, dim): the interface ``methods.Cayley`` uses.
    """

    traits = frozenset({SkewProduct()})

    def __init__(self, dim: int, width: int, activation: str = "tanh", *, init_scale: float = 0.5):
        super().__init__()
        self.dim = check_size("dim", dim)
        self.width = check_size("width", width)
        if dim < 2:
            raise ConfigError(f"SpherePreserving needs dim >= 2 (the only skew 1x1 matrix is 0), got dim={dim}")
        self.activation = get_activation(activation)
        pairs = dim * (dim - 1) // 2
        self.W = nn.Parameter(torch.randn(width, dim) / math.sqrt(dim))
        self.w = nn.Parameter(torch.randn(width) * 0.5)
        self.V = nn.Parameter(torch.randn(width, pairs) * (init_scale / math.sqrt(width)))
        self.register_buffer("basis", skew_basis(dim), persistent=False)

    def skew(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        upper = self.activation.fn(F.linear(x, self.W, self.w)) @ self.V
        return (upper @ self.basis).reshape(*x.shape[:-1], self.dim, self.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.skew(x) @ x.unsqueeze(-1)).squeeze(-1)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, width={self.width}, activation={self.activation.name!r}"
