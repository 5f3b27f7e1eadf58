"""An unstructured comparison model: a small periodic CNN that predicts U^{n+1} directly (no integrator)."""

from __future__ import annotations

import torch
from torch import nn

from ...checks import check_size
from ...errors import ConfigError, ShapeError
from ...linalg import circular_pad


class CircularCNN(nn.Module):
    """U -> W2 * tanh(W1 * U + b1) + b2 with circular padding: one hidden layer of ``width`` channels and
    k x k kernels; parameters (k^2 + 1) width + k^2 width + 1."""

    def __init__(self, width: int = 4, kernel_size: int = 3):
        super().__init__()
        width, kernel_size = check_size("CircularCNN width", width), check_size("CircularCNN kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise ConfigError(f"CircularCNN needs an odd kernel_size, got {kernel_size}")
        self.r = kernel_size // 2
        self.conv1 = nn.Conv2d(1, width, kernel_size)
        self.conv2 = nn.Conv2d(width, 1, kernel_size)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        if u.dim() != 4 or u.shape[1] != 1:
            raise ShapeError(f"CircularCNN expects (batch, 1, H, W), got {tuple(u.shape)}")
        return self.conv2(circular_pad(torch.tanh(self.conv1(circular_pad(u, self.r))), self.r))
