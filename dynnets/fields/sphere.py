"""Sphere-preserving field F(x) = S(x) x with S(x) skew-symmetric: d/dt ||x||^2 = 2 x^T S(x) x = 0."""

from __future__ import annotations

import torch

from ..structure import SkewProduct
from .upper_triangle import UpperTriangleNet, skew_basis


class SpherePreserving(UpperTriangleNet):
    """F(x) = S(x) x, S(x) = M(x) - M(x)^T, with the strictly upper triangle of M(x) given by
    V^T Sigma(W x + w) (W: (width, dim), V: (width, dim (dim - 1) / 2)). S(x) is built by placing
    +-entries, so it is skew-symmetric exactly in floating point. Needs dim >= 2.

    ``skew(x)`` returns S(x), shape (batch, dim, dim): the interface ``methods.Cayley`` uses.
    """

    traits = frozenset({SkewProduct()})

    def __init__(self, dim: int, width: int, activation: str = "tanh", *, init_scale: float = 0.5):
        super().__init__(dim, width, activation, init_scale, bias_scale=0.5,
                         why_dim="the only skew 1x1 matrix is 0")
        self.register_buffer("basis", skew_basis(dim), persistent=False)

    def skew(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return (self.upper(x) @ self.basis).reshape(*x.shape[:-1], self.dim, self.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.skew(x) @ x.unsqueeze(-1)).squeeze(-1)
