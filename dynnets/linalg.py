"""Exact operator norms (SVD for dense matrices, the FFT symbol for circular 2-D convolutions) and the
one circular padding / convolution every periodic layer uses; exact up to the round-off of an SVD, except
``power_iteration_norm``.

A kernel K (C_out, C_in, k1, k2), k1 and k2 odd, acts on x (C_in, n1, n2) by

    (K x)[o, i, j] = sum_{c, p, q} K[o, c, p, q] x[c, (i + p - k1 // 2) mod n1, (j + q - k2 // 2) mod n2].

Its singular values are those of the per-frequency matrices K^(w) = fft2 of the zero-padded kernel
(Sedghi, Gupta, Long, ICLR 2019), so the norm depends on the grid (n1, n2), which every function takes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .checks import check_int, check_size
from .errors import ConfigError, NonFiniteWeightError, ShapeError

__all__ = [
    "check_conv_kernel",
    "circular_conv",
    "circular_pad",
    "circular_conv_adjoint",
    "conv_operator_matrix",
    "conv_singular_values",
    "conv_spectral_norm",
    "cross_matrix",
    "matrix_bounds",
    "power_iteration_norm",
    "shared_norms",
    "singular_values",
    "spectral_norm",
    "vector_norm",
]


def check_grid(input_size) -> tuple[int, int]:
    try:
        n1, n2 = input_size
    except (TypeError, ValueError):
        raise ConfigError(f"input_size must be a pair (n1, n2) of positive ints, got {input_size!r}") from None
    return check_size("input_size n1", n1), check_size("input_size n2", n2)


def check_conv_kernel(kernel: torch.Tensor, input_size) -> tuple[int, int]:
    """Validate a circular-convolution kernel (C_out, C_in, k1, k2) against the grid it acts on:
    odd kernel sizes no larger than the grid. Returns the grid (n1, n2)."""
    n1, n2 = check_grid(input_size)
    if kernel.dim() != 4:
        raise ShapeError(f"a conv kernel must have shape (C_out, C_in, k1, k2), got {tuple(kernel.shape)}")
    k1, k2 = kernel.shape[-2:]
    if k1 % 2 == 0 or k2 % 2 == 0:
        raise ShapeError(f"circular conv kernels must have odd sizes, got {k1}x{k2}")
    if k1 > n1 or k2 > n2:
        raise ShapeError(f"kernel {k1}x{k2} is larger than the grid {n1}x{n2} it acts on; "
                         "the rule is k1 <= n1 and k2 <= n2")
    return n1, n2


def vector_norm(x: torch.Tensor, dim: int = -1, keepdim: bool = False) -> torch.Tensor:
    """Euclidean norm along ``dim`` without overflow or underflow: |x| = m |x / m|, m = max |x_i|."""
    m = x.abs().amax(dim=dim, keepdim=True)
    scale = torch.where(m > 0, m, torch.ones_like(m))
    out = scale * torch.linalg.vector_norm(x / scale, dim=dim, keepdim=True)
    return out if keepdim else out.squeeze(dim)


def cross_matrix(v: torch.Tensor) -> torch.Tensor:
    """[v]_x, the skew matrix with [v]_x z = v x z for v of shape (batch, 3): shape (batch, 3, 3), each entry
    and its mirror negated exactly."""
    v1, v2, v3 = v.unbind(-1)
    zero = torch.zeros_like(v1)
    return torch.stack([torch.stack([zero, -v3, v2], -1),
                        torch.stack([v3, zero, -v1], -1),
                        torch.stack([-v2, v1, zero], -1)], -2)


def norm_ratio(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """|x_i| / |y_i| per row (last dimension kept), 1 where y_i = 0; rows divided by their common max
    first (no overflow; a constant for autograd, as it cancels)."""
    with torch.no_grad():
        m = torch.maximum(x.abs(), y.abs()).amax(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
    nx = torch.linalg.vector_norm(x / m, dim=-1, keepdim=True)
    ny = torch.linalg.vector_norm(y / m, dim=-1, keepdim=True)
    nonzero = ny > 0
    return torch.where(nonzero, nx / torch.where(nonzero, ny, 1.0), 1.0)


def singular_values(w: torch.Tensor) -> torch.Tensor:
    """``torch.linalg.svdvals(w)``, the one SVD of every exact norm; NaN entries raise
    ``NonFiniteWeightError`` (an inf gives NaN values, refused by the layer's ``lipschitz_bound``)."""
    try:
        return torch.linalg.svdvals(w)
    except torch.linalg.LinAlgError:
        raise NonFiniteWeightError(f"the singular values of a {tuple(w.shape)} weight do not exist: it has NaN "
                                   "entries (rule: finite weights)") from None


def spectral_norm(w: torch.Tensor) -> torch.Tensor:
    """Largest singular value of a matrix by SVD (differentiable; exact up to round-off)."""
    if not isinstance(w, torch.Tensor) or w.dim() != 2 or w.numel() == 0:
        raise ShapeError(f"spectral_norm needs a non-empty matrix, got {_shape(w)}")
    return singular_values(w)[0]


def _shape(w) -> str:
    return f"shape {tuple(w.shape)}" if isinstance(w, torch.Tensor) else type(w).__name__


def matrix_bounds(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(s_min, s_max) of w as a map R^n -> R^m (w of shape (m, n)): s_min = 0 when m < n."""
    if w.dim() != 2:
        raise ShapeError(f"matrix_bounds needs a matrix, got shape {tuple(w.shape)}")
    s = singular_values(w)
    smin = s[-1] if w.shape[0] >= w.shape[1] else s.new_zeros(())
    return smin, s[0]


def conv_singular_values(kernel: torch.Tensor, input_size) -> torch.Tensor:
    """All singular values of the circular convolution on the grid, shape (n1 * n2, min(C_out, C_in))."""
    n1, n2 = check_conv_kernel(kernel, input_size)
    symbol = torch.fft.fft2(kernel, s=(n1, n2)).permute(2, 3, 0, 1)  # (n1, n2, C_out, C_in); fft2 zero-pads
    return singular_values(symbol).reshape(-1, min(kernel.shape[0], kernel.shape[1]))


def conv_bounds(kernel: torch.Tensor, input_size) -> tuple[torch.Tensor, torch.Tensor]:
    """(s_min, s_max) of the circular convolution as a map on R^(C_in n1 n2); s_min = 0 when C_out < C_in."""
    s = conv_singular_values(kernel, input_size)
    smin = s[:, -1].min() if kernel.shape[0] >= kernel.shape[1] else s.new_zeros(())
    return smin, s[:, 0].max()


def conv_spectral_norm(kernel: torch.Tensor, input_size) -> torch.Tensor:
    """Exact operator 2-norm of the circular convolution with ``kernel`` on an n1 x n2 grid."""
    return conv_singular_values(kernel, input_size)[:, 0].max()


def circular_pad(u: torch.Tensor, r1: int, r2: int | None = None) -> torch.Tensor:
    """Wrap-around padding of r1 rows and r2 (default r1) columns on each side of the last two axes
    (periodic boundary conditions); refused when wider than the grid."""
    r2 = r1 if r2 is None else r2
    if r1 == 0 and r2 == 0:
        return u
    if r1 > u.shape[-2] or r2 > u.shape[-1]:
        raise ShapeError(f"circular padding of width ({r1}, {r2}) needs a grid at least {r1}x{r2}, got "
                         f"{tuple(u.shape[-2:])}")
    return F.pad(u, (r2, r2, r1, r1), mode="circular")


def circular_conv(x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """The circular convolution of the module docstring, x: (batch, C_in, n1, n2)."""
    k1, k2 = kernel.shape[-2:]
    return F.conv2d(circular_pad(x, k1 // 2, k2 // 2), kernel, bias)


def circular_conv_adjoint(y: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """The adjoint (transpose) of ``circular_conv``: correlate with the flipped, channel-transposed kernel."""
    return circular_conv(y, kernel.flip(-1, -2).transpose(0, 1))


@torch.no_grad()
def conv_operator_matrix(kernel: torch.Tensor, input_size) -> torch.Tensor:
    """The explicit (C_out n1 n2) x (C_in n1 n2) matrix of the circular convolution (for tests; small grids)."""
    n1, n2 = check_conv_kernel(kernel, input_size)
    c_in = kernel.shape[1]
    basis = torch.eye(c_in * n1 * n2, dtype=kernel.dtype, device=kernel.device).reshape(-1, c_in, n1, n2)
    return circular_conv(basis, kernel).reshape(basis.shape[0], -1).T


@torch.no_grad()
def power_iteration_norm(w: torch.Tensor, iterations: int = 1, generator: torch.Generator | None = None) -> float:
    """NOT CERTIFIED: a power-iteration estimate of ||w||_2 (<= the true value), to reproduce published
    code; dynnets never certifies a bound with it."""
    iterations = check_int("power_iteration_norm's iterations", iterations, minimum=1)
    if not isinstance(w, torch.Tensor) or w.dim() != 2 or w.numel() == 0 or not w.is_floating_point():
        raise ShapeError(f"power_iteration_norm needs a non-empty floating matrix, got {_shape(w)}")
    v = torch.randn(w.shape[1], dtype=w.dtype, device=w.device, generator=generator)
    v = v / v.norm()
    for _ in range(iterations):
        u = w @ v
        u = u / u.norm()
        v = w.T @ u
        v = v / v.norm()
    return float((w @ v).norm())


_MEMO: dict | None = None


@contextlib.contextmanager
def shared_norms():
    """Within this (re-entrant) context each norm through ``memoized`` is computed once per weight tensor;
    ``Flow.forward`` enters it with ``torch.nn.utils.parametrize.cached()``."""
    global _MEMO
    outer = _MEMO
    _MEMO = {} if outer is None else outer
    try:
        yield
    finally:
        _MEMO = outer


def memoized(weight: torch.Tensor, what, compute: Callable[[], object]):
    """``compute()``, remembered inside ``shared_norms()`` under (weight, its version, ``what``, grad mode)."""
    if _MEMO is None:
        return compute()
    key = (id(weight), weight._version, what, torch.is_grad_enabled())
    if key not in _MEMO:
        _MEMO[key] = (weight, compute())  # keep the weight alive so its id is not reused
    return _MEMO[key][1]

