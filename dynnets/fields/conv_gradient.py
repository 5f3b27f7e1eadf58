"""Circular-convolution gradient field F(U) = sign * K^T sigma(K U + b), K (hidden, channels, k, k), odd k,
on a fixed ``input_size`` grid (its exact FFT-symbol norm depends on the grid: other sizes are refused).
With ``tied=False``, the baseline F(U) = B sigma(K U + b) (no sharp Euler bound claimed).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .. import checks, linalg
from ..base import Field
from ..checks import check_size
from ..errors import ShapeError
from .activations import get_activation
from .gradient_bounds import GradientBounds, check_sign


def conv_setup(field, channels: int, hidden: int, input_size, kernel_size: int) -> None:
    """Set the sizes of a circular-convolution field on states (batch, channels, *input_size)."""
    field.channels = check_size("channels", channels)
    field.hidden = check_size("hidden", hidden)
    field.kernel_size = check_size("kernel_size", kernel_size)
    field.input_size = linalg.check_grid(input_size)
    field.dim = channels * field.input_size[0] * field.input_size[1]
    field.state_ndim = 3  # (batch, C, H, W)


def conv_kernel(shape, input_size, init_scale: float) -> torch.Tensor:
    """A Gaussian kernel of ``shape`` rescaled so that ||K||_op^2 = init_scale exactly (FFT symbol norm)."""
    k = torch.randn(*shape)
    linalg.check_conv_kernel(k, input_size)
    return k * (math.sqrt(checks.init_scale(init_scale, positive=True))
                / float(linalg.conv_spectral_norm(k.double(), input_size)))


class ConvGradient(GradientBounds, Field):
    """F(U) = sign * K^T sigma(K U + b) on U of shape (batch, channels, n1, n2), ``input_size`` = (n1, n2);
    initialisation ``conv_kernel``."""

    weight_name = "K"

    def __init__(self, channels: int, hidden: int, input_size, kernel_size: int = 3, sign: int = -1,
                 activation="relu", *, tied: bool = True, init_scale: float = 0.5):
        super().__init__()
        conv_setup(self, channels, hidden, input_size, kernel_size)
        self.sign = check_sign(sign)
        self.tied = bool(tied)
        self.activation = get_activation(activation)
        k = kernel_size
        self.K = nn.Parameter(conv_kernel((hidden, channels, k, k), self.input_size, init_scale))
        self.b = nn.Parameter(torch.zeros(hidden))
        if not self.tied:
            self.B = nn.Parameter(conv_kernel((channels, hidden, k, k), self.input_size, init_scale))

    def check_input(self, x: torch.Tensor) -> None:
        want = (self.channels, *self.input_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != want:
            raise ShapeError(f"{type(self).__name__} acts on inputs of shape (batch, {want[0]}, {want[1]}, "
                             f"{want[2]}) (its certified norm is for that grid), got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        z = self.activation.fn(linalg.circular_conv(x, self.K, self.b))
        if not self.tied:
            return linalg.circular_conv(z, self.B)
        out = linalg.circular_conv_adjoint(z, self.K)
        return out if self.sign == 1 else -out

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
