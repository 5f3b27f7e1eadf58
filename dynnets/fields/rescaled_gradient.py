"""Rescaled gradient fields F(x) = -A^T T^{-1} sigma(A x + b) (dense and circular-convolution forms), T
diagonal, t_i = beta sum_j |(A A^T)_ij| q_j / q_i, q = exp(log_q) learned: beta ||T^{-1/2} A||_2^2 <= 1 for
every A, so the explicit Euler step with h <= 2 is 1-Lipschitz (SLL, Araujo et al. ICLR 2023; proof and the
conv form: docs/lipschitz.md). The certified bounds use the exact s_min, s_max of B = T^{-1/2} A in float64.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import linalg
from ..base import Field
from ..checks import check_size
from ..errors import ShapeError
from .activations import activation_slopes, get_activation
from .conv_gradient import conv_kernel, conv_setup
from .gradient import dense_weight
from .gradient_bounds import GradientBounds

#: the stiffness beta s_max(B)^2 the rescaling certifies for every A (module docstring): Euler's largest
#: stable (1-Lipschitz) step on these fields is 2 / 1 = 2 whatever the weights
CERTIFIED_STIFFNESS = 1.0


class _Rescaled(GradientBounds, Field):
    sign = -1

    def _init_common(self, activation, width: int) -> float:
        self.activation = get_activation(activation)
        _, beta = activation_slopes(self.activation)  # NotCertifiedError for non-monotone activations
        self.log_q = nn.Parameter(torch.zeros(width))
        return beta

    def scaling(self, dtype=None) -> torch.Tensor:
        """The diagonal t of T (one entry per hidden unit or channel; 0 replaced by 1), in ``dtype``."""
        w = self._weight(dtype)
        if w.dim() == 2:
            row_abs = (w @ w.T).abs()
        else:  # sum over offsets s of |(K K^T)_ij(s)|, the kernel of K K^T being K's cross-correlation with K
            row_abs = F.conv2d(w, w, padding=(w.shape[-2] - 1, w.shape[-1] - 1)).abs().sum(dim=(-2, -1))
        q = torch.exp(self.log_q.to(row_abs.dtype))
        t = self.beta * (row_abs @ q) / q
        return torch.where(t > 0, t, torch.ones_like(t))

    def spectral_bounds(self, dtype=None):
        what = ("rescaled", dtype, id(self.log_q), self.log_q._version)
        return linalg.memoized(self._weight(), what, lambda: self._spectral_bounds(self._weight(dtype)))

    def _spectral_bounds(self, w):
        """Those of B = T^{-1/2} A (module docstring)."""
        return super()._spectral_bounds(w / self.scaling(w.dtype).sqrt().reshape(-1, *[1] * (w.dim() - 1)))


class RescaledGradient(_Rescaled):
    """F(x) = -A^T T^{-1} sigma(A x + b), A: (width, dim), T from A (module docstring); x of shape (..., dim).
    Initialisation as ``Gradient``, q = 1."""

    weight_name = "A"

    def __init__(self, dim: int, width: int, activation="relu", *, init_scale: float = 1.0):
        super().__init__()
        self.dim = check_size("dim", dim)
        self.width = check_size("width", width)
        self.beta = self._init_common(activation, self.width)
        self.A = nn.Parameter(dense_weight(width, dim, init_scale))
        self.b = nn.Parameter(torch.zeros(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        t = self.scaling(x.dtype)
        return -F.linear(self.activation.fn(F.linear(x, self.A, self.b)) / t, self.A.t())

    def extra_repr(self) -> str:
        return f"dim={self.dim}, width={self.width}, activation={self.activation.name!r}"


class ConvRescaledGradient(_Rescaled):
    """F(U) = -K^T T^{-1} sigma(K U + b) on U of shape (batch, channels, n1, n2), K a circular convolution
    (hidden, channels, k, k), T one scale per hidden channel (module docstring). Initialisation
    ``conv_kernel``, b = 0, q = 1."""

    weight_name = "K"

    def __init__(self, channels: int, hidden: int, input_size, kernel_size: int = 3, activation="relu", *,
                 init_scale: float = 1.0):
        super().__init__()
        conv_setup(self, channels, hidden, input_size, kernel_size)
        self.beta = self._init_common(activation, self.hidden)
        shape = (hidden, channels, kernel_size, kernel_size)
        self.K = nn.Parameter(conv_kernel(shape, self.input_size, init_scale))
        self.b = nn.Parameter(torch.zeros(hidden))

    def check_input(self, x: torch.Tensor) -> None:
        want = (self.channels, *self.input_size)
        if x.dim() < 3 or tuple(x.shape[-3:]) != want:
            raise ShapeError(f"{type(self).__name__} acts on inputs of shape (..., {want[0]}, {want[1]}, {want[2]}) "
                             f"(its certified norm is for that grid), got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        lead = x.shape[:-3]
        x = x.reshape(-1, *x.shape[-3:])
        t = self.scaling(x.dtype)[:, None, None]
        z = self.activation.fn(linalg.circular_conv(x, self.K, self.b)) / t
        return -linalg.circular_conv_adjoint(z, self.K).reshape(*lead, *x.shape[1:])

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, hidden={self.hidden}, input_size={self.input_size}, "
                f"kernel_size={self.kernel_size}, activation={self.activation.name!r}")
