"""Mass-preserving field F(x) = (A(x) - A(x)^T) 1 (Celledoni, Murari, Owren, Schoenlieb, Sherry 2022).

vec A(x) = V^T Sigma(W x + w) fills only the strictly upper triangle of A (the diagonal cancels in
A - A^T and the lower triangle adds nothing the upper one cannot), so with D the incidence matrix of
the pairs i < j, F(x) = D^T V^T Sigma(W x + w). Every row of D sums to zero, so 1^T F(x) = 0 for all x
and every Runge-Kutta method conserves the mass 1^T x (trait ``ConservesLinear(ones)``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..structure import ConservesLinear
from ._pairs import incidence
from .activations import get_activation
from .base import Field, check_size


class MassPreserving(Field):
    """F(x) = (A(x) - A(x)^T) 1, vec A(x) = V^T Sigma(W x + w) on the strictly upper triangle.

    W: (width, dim), w: (width,), V: (width, dim (dim - 1) / 2). Needs dim >= 2 (in one dimension the
    only mass-preserving field is zero). Initialisation as ``Dense``: W ~ N(0, 1/dim), w = 0,
    V ~ N(0, init_scale^2 / width).
    """

    def __init__(self, dim: int, width: int, activation: str = "tanh", *, init_scale: float = 0.5):
        super().__init__()
        self.dim = check_size("dim", dim)
        self.width = check_size("width", width)
        if dim < 2:
            raise ConfigError(f"MassPreserving needs dim >= 2 (a 1-D mass-preserving field is 0), got dim={dim}")
        self.activation = get_activation(activation)
        pairs = dim * (dim - 1) // 2
        self.W = nn.Parameter(torch.randn(width, dim) / math.sqrt(dim))
        self.w = nn.Parameter(torch.zeros(width))
        self.V = nn.Parameter(torch.randn(width, pairs) * (init_scale / math.sqrt(width)))
        self.register_buffer("incidence", incidence(dim), persistent=False)
        self.traits = frozenset({ConservesLinear((1.0,) * dim)})

    def upper(self, x: torch.Tensor) -> torch.Tensor:
        """The strictly upper-triangular entries of A(x), shape (batch, dim (dim - 1) / 2)."""
        return self.activation.fn(F.linear(x, self.W, self.w)) @ self.V

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.upper(x) @ self.incidence

    def extra_repr(self) -> str:
        return f"dim={self.dim}, width={self.width}, activation={self.activation.name!r}"
