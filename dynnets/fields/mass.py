"""Mass-preserving field F(x) = (A(x) - A(x)^T) 1 (Celledoni, Murari, Owren, Schoenlieb, Sherry 2022).

vec A(x) = V^T Sigma(W x + w) fills only the strictly upper triangle of A (the diagonal cancels in
A - A^T and the lower triangle adds nothing the upper one cannot), so with D the incidence matrix of
the pairs i < j, F(x) = D^T V^T Sigma(W x + w). Every row of D sums to zero, so 1^T F(x) = 0 for all x
and every Runge-Kutta method conserves the mass 1^T x (trait ``ConservesLinear(ones)``).
"""

from __future__ import annotations

import torch

from ..structure import ConservesLinear
from .low_rank import LowRankMassPreserving
from .upper_triangle import UpperTriangleNet, incidence


class MassPreserving(UpperTriangleNet):
    """F(x) = (A(x) - A(x)^T) 1, vec A(x) = V^T Sigma(W x + w) on the strictly upper triangle.

    W: (width, dim), w: (width,), V: (width, dim (dim - 1) / 2). Needs dim >= 2 (in one dimension the
    only mass-preserving field is zero). Initialisation as ``Dense``: W ~ N(0, 1/dim), w = 0,
    V ~ N(0, init_scale^2 / width).

    ``rank=k`` builds a ``LowRankMassPreserving(dim, width, activation, rank=k, init_scale=...)`` instead:
    A(x) = U(x) V(x)^T with U, V of k columns, so F(x) costs O(dim k) per sample instead of O(dim^2).
    """

    low_rank = LowRankMassPreserving

    def __init__(self, dim: int, width: int, activation: str = "tanh", *, init_scale: float = 0.5,
                 rank: int | None = None):
        super().__init__(dim, width, activation, init_scale, bias_scale=0.0,
                         why_dim="a 1-D mass-preserving field is 0")
        self.register_buffer("incidence", incidence(dim), persistent=False)
        self.traits = frozenset({ConservesLinear((1.0,) * dim)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.upper(x) @ self.incidence
