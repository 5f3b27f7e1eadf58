"""Target maps of R^3 for the approximation experiments (all float64-exact or RK4-converged).

``rotation_shear()``: the linear map x -> R (I + s e_1 e_3^T) x (rotation about (1, 1, 1)/sqrt 3).
``DampedForced``: a non-conservative 3-D vector field (divergence -1, constant forcing);
``time_one_map(field)``: its time-1 flow by fine RK4, itself a ``dn.Flow`` of a fixed field.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ConfigError
from ..methods import RK4
from ..step import Flow, Step

__all__ = ["rotation_shear", "LinearMap", "DampedForced", "time_one_map"]


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


class DampedForced(nn.Module):
    """A damped, forced, nonlinear 3-D field (no parameters; div f = -(a + b + c) < 0):

        x1' = x2 - a x1 + 0.4 x2 x3
        x2' = -x1 - b x2 + 0.5 sin(x3)
        x3' = -c x3 + 0.6 x1 x2 + 0.3
    """

    def __init__(self, a: float = 0.3, b: float = 0.2, c: float = 0.5):
        super().__init__()
        self.a, self.b, self.c = float(a), float(b), float(c)
        self.dim = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2, x3 = x.unbind(-1)
        return torch.stack([
            x2 - self.a * x1 + 0.4 * x2 * x3,
            -x1 - self.b * x2 + 0.5 * torch.sin(x3),
            -self.c * x3 + 0.6 * x1 * x2 + 0.3,
        ], dim=-1)


def time_one_map(field: nn.Module, t: float = 1.0, steps: int = 200) -> Flow:
    """The time-t flow of ``field`` by ``steps`` RK4 steps (error O((t/steps)^4), checked in the tests)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be a positive integer, got steps={steps!r}")
    return Flow.repeat(Step(field, RK4(), t / steps), steps)
