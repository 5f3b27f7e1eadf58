"""Finite-difference stencils applied with wrap-around on a periodic 2-D grid.

Kernels are indexed [a, b], a along y (rows), b along x (columns), centre [r, r]: ``laplacian`` "5pt" and
"9pt" (order 2; 9pt with isotropic leading error, Patra & Karttunen 2006) and "cross4" (order 4),
``gradient`` of order 2 or 4, ``identity`` (K * U = U). A stencil K (odd size 2r+1) acts by
cross-correlation with wrap-around,

    (K * U)[iy, ix] = sum_{a,b} K[a, b] U[iy + a - r, ix + b - r]   (indices mod n),

a circulant operator whose eigenvalues are its symbol on the grid frequencies (``stencil_symbol``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..checks import check_int, positive_real
from ..errors import ConfigError, ShapeError


def check_stencil(kernel: torch.Tensor, what: str = "stencil") -> torch.Tensor:
    """``kernel`` as a finite floating 2-D tensor with odd, equal side lengths (ShapeError, ConfigError)."""
    k = torch.as_tensor(kernel)
    if k.dim() != 2 or k.shape[0] != k.shape[1] or k.shape[0] % 2 == 0:
        raise ShapeError(f"{what} must be a square 2-D kernel of odd size, got shape {tuple(k.shape)}")
    if not k.is_floating_point():
        k = k.to(torch.float64)
    if not bool(torch.isfinite(k).all()):
        raise ConfigError(f"{what} must be finite, got NaN or inf entries")
    return k


def pad_kernel(kernel: torch.Tensor, size: int) -> torch.Tensor:
    """Embed an odd kernel in the centre of a size x size one (zeros around): same operator."""
    kernel = check_stencil(kernel)
    k = kernel.shape[0]
    if size < k or size % 2 == 0:
        raise ConfigError(f"cannot embed a {k}x{k} stencil in a {size}x{size} kernel (need odd size >= {k})")
    p = (size - k) // 2
    return F.pad(kernel, (p, p, p, p))


def stencil_taps(kernel: torch.Tensor) -> tuple[tuple[tuple[int, int], float], ...]:
    """The non-zero entries of a stencil as ((shift_y, shift_x), weight) with
    torch.roll(u, shift)[i] = u[i - shift], so that K * U = sum weight * roll(U, shift)."""
    kernel = check_stencil(kernel).detach().to("cpu", torch.float64)
    r = kernel.shape[0] // 2
    return tuple(((r - a, r - b), float(kernel[a, b])) for a, b in kernel.nonzero().tolist())


def apply_taps(taps, u: torch.Tensor) -> torch.Tensor:
    """sum weight * roll(u, shift) over the taps (see ``stencil_taps``), on the last two axes."""
    out = None
    for shift, w in taps:
        term = torch.roll(u, shifts=shift, dims=(-2, -1))
        term = term if w == 1.0 else w * term
        out = term if out is None else out + term
    return torch.zeros_like(u) if out is None else out


def apply_stencil(kernel: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """K * U with wrap-around, channel by channel (a sum of shifted copies); u: (batch, C, n, n)."""
    if u.dim() != 4:
        raise ShapeError(f"apply_stencil expects (batch, C, H, W), got shape {tuple(u.shape)}")
    kernel = check_stencil(kernel)
    if kernel.shape[0] > min(u.shape[-2:]):
        raise ShapeError(f"a {kernel.shape[0]}x{kernel.shape[0]} stencil does not fit a grid {tuple(u.shape[-2:])}")
    return apply_taps(stencil_taps(kernel), u)


def stencil_symbol(kernel: torch.Tensor, n: int) -> torch.Tensor:
    """The eigenvalues of U -> K * U on an n x n periodic grid, as an (n, n) complex tensor indexed like
    torch.fft.fft2: the mode exp(2 pi i (kx ix + ky iy)/n) is an eigenvector with eigenvalue
    sum_{a,b} K[a, b] exp(2 pi i (kx (b - r) + ky (a - r))/n)."""
    kernel = check_stencil(kernel).to(torch.float64)
    r = kernel.shape[0] // 2
    if kernel.shape[0] > n:
        raise ShapeError(f"a {kernel.shape[0]}x{kernel.shape[0]} stencil does not fit an {n}x{n} grid")
    k = torch.arange(n, dtype=torch.float64)
    offsets = torch.arange(-r, r + 1, dtype=torch.float64)
    phase = torch.exp(2j * math.pi * torch.outer(k, offsets) / n)  # (n, 2r+1): exp(2 pi i k o/n)
    # symbol[ky, kx] = sum_{a,b} K[a,b] phase[ky, a] phase[kx, b]
    return phase @ kernel.to(torch.complex128) @ phase.T


def _spacing(dx) -> float:
    return positive_real("grid spacing dx", dx, symbol="dx")


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
        raise ConfigError(f"unknown Laplacian stencil {name!r}; choose one of ['5pt', '9pt', 'cross4']")
    return (k / (dx * dx)).to(dtype)


def gradient(axis: str, order: str = "2", dx: float = 1.0, dtype=torch.float64) -> torch.Tensor:
    """Central difference d/dx (axis="x") or d/dy (axis="y") of order 2 (3x3) or 4 (5x5), divided by dx."""
    dx = _spacing(dx)
    if order == "2":
        line = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64) / 2.0
    elif order == "4":
        line = torch.tensor([1.0, -8.0, 0.0, 8.0, -1.0], dtype=torch.float64) / 12.0
    else:
        raise ConfigError(f"unknown gradient order {order!r}; choose one of ['2', '4']")
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
    if check_int("a kernel size", size, minimum=1) % 2 == 0:
        raise ConfigError(f"a kernel size must be a positive odd integer, got {size!r}")
    k = torch.zeros(size, size, dtype=dtype)
    k[size // 2, size // 2] = 1.0
    return k


def kernel_moments(kernel: torch.Tensor, dx: float = 1.0) -> dict[str, float]:
    """Moments M_pq = sum K[a,b] (x_b)^p (y_a)^q with offsets x_b = (b - r) dx, y_a = (a - r) dx, p + q <= 2.
    Keys: "sum", "x", "y", "xx", "xy", "yy"."""
    k = check_stencil(kernel).detach().to("cpu", torch.float64)
    dx = _spacing(dx)
    r = k.shape[0] // 2
    off = (torch.arange(k.shape[0], dtype=torch.float64) - r) * dx
    y, x = torch.meshgrid(off, off, indexing="ij")
    products = {"sum": k, "x": k * x, "y": k * y, "xx": k * x * x, "xy": k * x * y, "yy": k * y * y}
    return {name: float(p.sum()) for name, p in products.items()}
