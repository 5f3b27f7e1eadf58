"""Finite-difference stencils on a uniform 2-D grid, as correlation kernels (see ``periodic2d``).

Kernels are indexed [a, b] with a along y (rows) and b along x (columns); the centre is [r, r].

    laplacian("5pt", dx)    [[0, 1, 0], [1, -4, 1], [0, 1, 0]] / dx^2             order 2 (3x3)
    laplacian("9pt", dx)    [[1, 4, 1], [4, -20, 4], [1, 4, 1]] / (6 dx^2)         order 2, isotropic
                            leading error (3x3; Patra & Karttunen 2006)
    laplacian("cross4", dx) 1-D [-1, 16, -30, 16, -1] / (12 dx^2) along x and y     order 4 (5x5)
    gradient(axis, "2", dx) [-1, 0, 1] / (2 dx)                                     order 2
    gradient(axis, "4", dx) [1, -8, 0, 8, -1] / (12 dx)                             order 4
    identity(size)          the delta kernel: K * U = U

``kernel_moments`` gives sum_{a,b} K[a,b] (b - r)^p (a - r)^q dx^(p+q) for p + q <= 2: for a
consistent approximation of a differential operator sum c_pq d^p_x d^q_y these are the Taylor
coefficients p! q! c_pq (e.g. the Laplacian: sum 0, first moments 0, xx = yy = 2, xy = 0).
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from .periodic2d import check_kernel

LAPLACIANS = {"5pt": 2, "9pt": 2, "cross4": 4}  # name -> order of accuracy
GRADIENTS = {"2": 2, "4": 4}


def _spacing(dx) -> float:
    dx = float(dx)
    if not (dx > 0 and dx < float("inf")):
        raise ConfigError(f"grid spacing dx must be positive and finite, got dx={dx}")
    return dx


def laplacian(name: str = "5pt", dx: float = 1.0, dtype=torch.float64) -> torch.Tensor:
    """The named Laplacian stencil divided by dx^2 (see the module docstring)."""
    dx = _spacing(dx)
    if name == "5pt":
        k = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    elif name == "9pt":
        k = torch.tensor([[1.0, 4.0, 1.0], [4.0, -20.0, 4.0], [1.0, 4.0, 1.0]], dtype=torch.float64) / 6.0
    elif name == "cross4":
        line = torch.tensor([-1.0, 16.0, -30.0, 16.0, -1.0], dtype=torch.float64) / 12.0
        k = torch.zeros(5, 5, dtype=torch.float64)
        k[2, :] += line
        k[:, 2] += line
    else:
        raise ConfigError(f"unknown Laplacian stencil {name!r}; choose one of {sorted(LAPLACIANS)}")
    return (k / (dx * dx)).to(dtype)


def gradient(axis: str, order: str = "2", dx: float = 1.0, dtype=torch.float64) -> torch.Tensor:
    """Central difference d/dx (axis="x") or d/dy (axis="y") of order 2 (3x3) or 4 (5x5), divided by dx."""
    dx = _spacing(dx)
    if order == "2":
        line = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64) / 2.0
    elif order == "4":
        line = torch.tensor([1.0, -8.0, 0.0, 8.0, -1.0], dtype=torch.float64) / 12.0
    else:
        raise ConfigError(f"unknown gradient order {order!r}; choose one of {sorted(GRADIENTS)}")
    m = line.numel()
    k = torch.zeros(m, m, dtype=torch.float64)
    if axis == "x":
        k[m // 2, :] = line
    elif axis == "y":
        k[:, m // 2] = line
    else:
        raise ConfigError(f"gradient axis must be 'x' or 'y', got {axis!r}")
    return (k / dx).to(dtype)


def identity(size: int = 1, dtype=torch.float64) -> torch.Tensor:
    """The delta kernel of odd size ``size``: K * U = U."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ConfigError(f"a kernel size must be a positive odd integer, got {size!r}")
    k = torch.zeros(size, size, dtype=dtype)
    k[size // 2, size // 2] = 1.0
    return k


def kernel_moments(kernel: torch.Tensor, dx: float = 1.0) -> dict[str, float]:
    """Moments M_pq = sum K[a,b] (x_b)^p (y_a)^q with offsets x_b = (b - r) dx, y_a = (a - r) dx, p + q <= 2.
    Keys: "sum", "x", "y", "xx", "xy", "yy"."""
    k = check_kernel(kernel).detach().to("cpu", torch.float64)
    dx = _spacing(dx)
    r = k.shape[0] // 2
    off = (torch.arange(k.shape[0], dtype=torch.float64) - r) * dx
    y, x = torch.meshgrid(off, off, indexing="ij")
    return {
        "sum": float(k.sum()),
        "x": float((k * x).sum()),
        "y": float((k * y).sum()),
        "xx": float((k * x * x).sum()),
        "xy": float((k * x * y).sum()),
        "yy": float((k * y * y).sum()),
    }
