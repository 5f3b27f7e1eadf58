"""Partitioned fields F(q, v) = (f(v), g(q)): the symplectic Euler step q' = q + h f(v), v' = v + h g(q') is a
composition of two shears, det D Psi = 1 exactly and explicitly invertible. ``VolumePreserving``: Celledoni,
Murari, Owren, Schoenlieb, Sherry 2022.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from ..base import PartitionedField
from ..checks import check_size
from .activations import get_activation


class VolumePreserving(PartitionedField):
    """F(q, v) = (C Sigma(A v + a), D Sigma(B q + b)), q in R^dim, v in R^v_dim (default v_dim = dim),
    A: (width, v_dim), B: (width, dim); initialisation as ``Dense``."""

    def __init__(self, dim: int, width: int, v_dim: int | None = None, activation: str = "tanh", *,
                 init_scale: float = 0.5):
        super().__init__()
        self.q_dim = check_size("dim", dim)
        self.v_dim = dim if v_dim is None else check_size("v_dim", v_dim)
        self.width = check_size("width", width)
        self.dim = self.q_dim + self.v_dim
        self.activation = get_activation(activation)
        out = checks.init_scale(init_scale) / math.sqrt(width)
        self.A = nn.Parameter(torch.randn(width, self.v_dim) / math.sqrt(self.v_dim))
        self.a = nn.Parameter(torch.zeros(width))
        self.C = nn.Parameter(torch.randn(self.q_dim, width) * out)
        self.B = nn.Parameter(torch.randn(width, self.q_dim) / math.sqrt(self.q_dim))
        self.b = nn.Parameter(torch.zeros(width))
        self.D = nn.Parameter(torch.randn(self.v_dim, width) * out)

    def f(self, v: torch.Tensor) -> torch.Tensor:
        return F.linear(self.activation.fn(F.linear(v, self.A, self.a)), self.C)

    def g(self, q: torch.Tensor) -> torch.Tensor:
        return F.linear(self.activation.fn(F.linear(q, self.B, self.b)), self.D)

    def extra_repr(self) -> str:
        return (f"dim={self.q_dim}, v_dim={self.v_dim}, width={self.width}, "
                f"activation={self.activation.name!r}")
