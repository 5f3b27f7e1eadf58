"""Circular-convolution gradient field on images: F(U) = sign * K^T sigma(K U + b).

K: a circular convolution (hidden, channels, k, k), odd k, on a fixed ``input_size`` grid (its exact
FFT-symbol norm depends on the grid: other sizes are refused); the conv version of ``Gradient``. With
``tied=False``, the baseline F(U) = B sigma(K U + b) (no sharp Euler bound claimed).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .. import checks, linalg
from ..base import Field
from ..checks import check_size
from ..errors import ConfigError, ShapeError
from .activations import get_activation
from .gradient_bounds import GradientBounds


class ConvGradient(GradientBounds, Field):
    """F(U) = sign * K^T sigma(K U + b) on U of shape (batch, channels, n1, n2), ``input_size`` = (n1, n2).

    Initialisation: K Gaussian, rescaled so that ||K||_op^2 = init_scale exactly (FFT symbol norm).
    """

    def __init__(self, channels: int, hidden: int, input_size, kernel_size: int = 3, sign: int = -1,
                 activation="relu", *, tied: bool = True, init_scale: float = 0.5):
        super().__init__()
        self.channels = check_size("channels", channels)
        self.hidden = check_size("hidden", hidden)
        self.kernel_size = check_size("kernel_size", kernel_size)
        self.input_size = linalg.check_grid(input_size)
        if isinstance(sign, bool) or sign not in (-1, 1):
            raise ConfigError(f"sign must be -1 (contractive) or +1 (expansive), got sign={sign!r}")
        self.sign = int(sign)
        self.tied = bool(tied)
        self.activation = get_activation(activation)
        self.dim = channels * self.input_size[0] * self.input_size[1]
        self.state_ndim = 3  # (batch, C, H, W)
        k = torch.randn(hidden, channels, kernel_size, kernel_size)
        linalg.check_conv_kernel(k, self.input_size)
        init_scale = checks.init_scale(init_scale, positive=True)
        k = k * (math.sqrt(init_scale) / float(linalg.conv_spectral_norm(k.double(), self.input_size)))
        self.K = nn.Parameter(k)
        self.b = nn.Parameter(torch.zeros(hidden))
        if not self.tied:
            bk = torch.randn(channels, hidden, kernel_size, kernel_size)
            bk = bk * (math.sqrt(init_scale) / float(linalg.conv_spectral_norm(bk.double(), self.input_size)))
            self.B = nn.Parameter(bk)

    def check_input(self, x: torch.Tensor) -> None:
        want = (self.channels, *self.input_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != want:
            raise ShapeError(
                f"{type(self).__name__} acts on inputs of shape (batch, {want[0]}, {want[1]}, {want[2]}) "
                f"(its certified norm is for that grid), got shape {tuple(x.shape)}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        z = self.activation.fn(linalg.circular_conv(x, self.K, self.b))
        if not self.tied:
            return linalg.circular_conv(z, self.B)
        out = linalg.circular_conv_adjoint(z, self.K)
        return out if self.sign == 1 else -out

    def _weight(self):
        return self.K

    def _spectral_bounds(self, dtype=None):
        k = self.K if dtype is None else self.K.to(dtype)
        return linalg.conv_bounds(k, self.input_size)

    @torch.no_grad()
    def lipschitz_bound(self) -> float:
        if self.tied:
            return super().lipschitz_bound()
        nk = linalg.conv_spectral_norm(self.K.double(), self.input_size)
        nb = linalg.conv_spectral_norm(self.B.double(), self.input_size)
        return float(nb * self.activation.lipschitz * nk)

    def euler_lipschitz_bound(self, h):
        return super().euler_lipschitz_bound(h) if self.tied else None

    def stiffness(self):
        return super().stiffness() if self.tied else None

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, hidden={self.hidden}, input_size={self.input_size}, "
                f"kernel_size={self.kernel_size}, sign={self.sign:+d}, tied={self.tied}, "
                f"activation={self.activation.name!r}")
