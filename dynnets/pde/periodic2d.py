"""Periodic 2-D grids and circular convolution (finite differences as convolutions).

A field on ``PeriodicGrid2D(n)`` is a tensor of shape (batch, C, n, n): index [..., iy, ix] holds
u(x_ix, y_iy) with x_i = y_i = i * dx, i = 0..n-1, dx = L/n on the torus [0, L)^2 (the last axis is x).

A stencil K (odd size 2r+1 in both directions) acts by cross-correlation with wrap-around,

    (K * U)[iy, ix] = sum_{a,b} K[a, b] U[iy + a - r, ix + b - r]   (indices mod n),

which is ``torch.nn.functional.conv2d`` after circular padding; K[r, r + 1] is the weight of the
right neighbour u(x + dx, y). On a periodic grid this operator is circulant, so its eigenvalues are
the values of the stencil's symbol on the grid frequencies (``stencil_symbol``): exact, not estimated.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import ConfigError, ShapeError


class PeriodicGrid2D:
    """n x n nodes of the torus [0, L)^2, spacing dx = L/n."""

    def __init__(self, n: int, length: float = 1.0):
        if isinstance(n, bool) or not isinstance(n, int) or n < 3:
            raise ConfigError(f"a periodic grid needs an integer number of nodes n >= 3, got n={n!r}")
        length = float(length)
        if not (math.isfinite(length) and length > 0):
            raise ConfigError(f"the period L must be positive and finite, got L={length}")
        self.n, self.length = n, length
        self.dx = length / n

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n, self.n)

    def coordinates(self, dtype=torch.float64, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(X, Y), each (n, n), with X[iy, ix] = ix dx and Y[iy, ix] = iy dx."""
        x = torch.arange(self.n, dtype=dtype, device=device) * self.dx
        yy, xx = torch.meshgrid(x, x, indexing="ij")
        return xx, yy

    def wavenumbers(self, dtype=torch.float64, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Integer wavenumbers (KX, KY) of torch.fft.fft2 on this grid (mode exp(2 pi i (kx x + ky y)/L))."""
        k = torch.fft.fftfreq(self.n, d=1.0 / self.n, dtype=dtype, device=device)
        ky, kx = torch.meshgrid(k, k, indexing="ij")
        return kx, ky

    def check_field(self, u: torch.Tensor, what: str = "u") -> None:
        if u.dim() != 4 or tuple(u.shape[-2:]) != self.shape:
            raise ShapeError(
                f"{what} on a {self.n}x{self.n} periodic grid must have shape (batch, C, {self.n}, {self.n}), "
                f"got {tuple(u.shape)}"
            )

    def __repr__(self) -> str:
        return f"PeriodicGrid2D(n={self.n}, L={self.length}, dx={self.dx:.4g})"


def check_kernel(kernel: torch.Tensor, what: str = "stencil") -> torch.Tensor:
    """A stencil is a 2-D tensor with odd, equal side lengths."""
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
    kernel = check_kernel(kernel)
    k = kernel.shape[0]
    if size < k or size % 2 == 0:
        raise ConfigError(f"cannot embed a {k}x{k} stencil in a {size}x{size} kernel (need odd size >= {k})")
    p = (size - k) // 2
    return F.pad(kernel, (p, p, p, p))


def circular_pad(u: torch.Tensor, r: int) -> torch.Tensor:
    """Wrap-around padding of width r on the last two axes (r must not exceed the grid size)."""
    if r == 0:
        return u
    if r > u.shape[-1] or r > u.shape[-2]:
        raise ShapeError(f"circular padding of width {r} needs a grid at least {r}x{r}, got {tuple(u.shape[-2:])}")
    return F.pad(u, (r, r, r, r), mode="circular")


def stencil_taps(kernel: torch.Tensor) -> tuple[tuple[tuple[int, int], float], ...]:
    """The non-zero entries of a stencil as ((shift_y, shift_x), weight) with
    torch.roll(u, shift)[i] = u[i - shift], so that K * U = sum weight * roll(U, shift)."""
    kernel = check_kernel(kernel).detach().to("cpu", torch.float64)
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
    """K * U with wrap-around, channel by channel; u: (batch, C, n, n).

    FD stencils are sparse: a sum of shifted copies is exact and on CPU much faster than a dense
    float64 convolution."""
    if u.dim() != 4:
        raise ShapeError(f"apply_stencil expects (batch, C, H, W), got shape {tuple(u.shape)}")
    kernel = check_kernel(kernel)
    if kernel.shape[0] > min(u.shape[-2:]):
        raise ShapeError(f"a {kernel.shape[0]}x{kernel.shape[0]} stencil does not fit a grid {tuple(u.shape[-2:])}")
    return apply_taps(stencil_taps(kernel), u)


def stencil_symbol(kernel: torch.Tensor, n: int) -> torch.Tensor:
    """The eigenvalues of U -> K * U on an n x n periodic grid, as an (n, n) complex tensor indexed like
    torch.fft.fft2: the mode exp(2 pi i (kx ix + ky iy)/n) is an eigenvector with eigenvalue
    sum_{a,b} K[a, b] exp(2 pi i (kx (b - r) + ky (a - r))/n)."""
    kernel = check_kernel(kernel).to(torch.float64)
    r = kernel.shape[0] // 2
    if kernel.shape[0] > n:
        raise ShapeError(f"a {kernel.shape[0]}x{kernel.shape[0]} stencil does not fit an {n}x{n} grid")
    k = torch.arange(n, dtype=torch.float64)
    offsets = torch.arange(-r, r + 1, dtype=torch.float64)
    phase = torch.exp(2j * math.pi * torch.outer(k, offsets) / n)  # (n, 2r+1): exp(2 pi i k o/n)
    # symbol[ky, kx] = sum_{a,b} K[a,b] phase[ky, a] phase[kx, b]
    return phase @ kernel.to(torch.complex128) @ phase.T
