"""The unstructured field F(x) = B sigma(A x + b): explicit Euler of it is a ResNet block."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from ..base import Field
from ..checks import check_size
from ..linalg import spectral_norm
from .activations import get_activation


class Dense(Field):
    """F(x) = B sigma(A x + b), A: (width, dim), b: (width,), B: (dim, width). Init A ~ N(0, 1/dim), b = 0,
    B ~ N(0, init_scale^2 / width): E[D F] = 0 and n Euler steps change E||x||^2 by about exp(c n h^2 / 2),
    c <= init_scale^2 E[sigma'^2], whatever the width."""

    def __init__(self, dim: int, width: int, activation: str = "tanh", *, init_scale: float = 0.5):
        super().__init__()
        self.dim = check_size("dim", dim)
        self.width = check_size("width", width)
        self.activation = get_activation(activation)
        self.A = nn.Parameter(torch.randn(width, dim) / math.sqrt(dim))
        self.b = nn.Parameter(torch.zeros(width))
        self.B = nn.Parameter(torch.randn(dim, width) * (checks.init_scale(init_scale) / math.sqrt(width)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return F.linear(self.activation.fn(F.linear(x, self.A, self.b)), self.B)

    @torch.no_grad()
    def lipschitz_bound(self) -> float:
        """||B||_2 Lip(sigma) ||A||_2 with exact spectral norms."""
        return float(spectral_norm(self.B) * self.activation.lipschitz * spectral_norm(self.A))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, width={self.width}, activation={self.activation.name!r}"
