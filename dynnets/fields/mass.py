"""Mass-preserving field F(x) = (A(x) - A(x)^T) 1 (Celledoni, Murari, Owren, Schoenlieb, Sherry 2022):
1^T F(x) = 0, so every Runge-Kutta method conserves the mass 1^T x. Full rank, or ``rank=k``: A(x) =
U(x) V(x)^T.
"""

from __future__ import annotations

import torch

from ..structure import LinearInvariant
from .skew import SkewField


class MassPreserving(SkewField):
    """F(x) = (A(x) - A(x)^T) 1 (module docstring), A(x) as in ``fields.skew``. Needs dim >= 2."""

    def __init__(self, dim: int, width: int, activation: str = "tanh", *, init_scale: float = 0.5,
                 rank: int | None = None):
        super().__init__(dim, width, activation, rank, init_scale, 0.0, "a 1-D mass-preserving field is 0")
        self.traits = frozenset({LinearInvariant.ones(self.dim)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.net.row_sums(x)
