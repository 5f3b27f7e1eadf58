"""Target maps of R^3 for the approximation experiments (float64-exact or RK4-converged): the linear
``rotation_shear()``; the time-1 flow of a fixed field (e.g. ``dynnets.systems.DampedForced``) is
``Flow.repeat(Step(field, RK4(), 1 / 200), 200)``, itself a ``dn.Flow``."""

from __future__ import annotations

import math

import torch
from torch import nn


def rotation_shear(angle: float = 1.0, shear: float = 0.8, dtype=torch.float64) -> torch.Tensor:
    """R (I + shear e_1 e_3^T), R the rotation by ``angle`` about (1, 1, 1)/sqrt(3) (Rodrigues)."""
    k = torch.full((3,), 1 / math.sqrt(3), dtype=dtype)
    kx = torch.tensor([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]], dtype=dtype)
    rot = torch.eye(3, dtype=dtype) + math.sin(angle) * kx + (1 - math.cos(angle)) * kx @ kx
    sh = torch.eye(3, dtype=dtype)
    sh[0, 2] = shear
    return rot @ sh


class LinearMap(nn.Module):
    """x -> M x (rows of x are points)."""

    def __init__(self, matrix: torch.Tensor):
        super().__init__()
        self.register_buffer("matrix", matrix)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.matrix.t()
