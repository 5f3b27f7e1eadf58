"""A fixed linear vector field F(x) = M x."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..base import Field
from ..checks import real_array
from ..errors import ConfigError
from ..linalg import spectral_norm


class Linear(Field):
    """F(x) = M x, M a fixed buffer (exact solution exp(t M) x0): it computes in its input's dtype, with M
    cast from its exact float64 value."""

    def __init__(self, matrix):
        super().__init__()
        if isinstance(matrix, torch.Tensor) and matrix.is_complex():
            raise ConfigError(f"Linear needs a real matrix, got dtype {matrix.dtype} (the imaginary part would be "
                              "dropped)")
        m = real_array("Linear's matrix", matrix)
        dtype = matrix.dtype if isinstance(matrix, torch.Tensor) and matrix.is_floating_point() else \
            torch.get_default_dtype()
        if m.dim() != 2 or m.shape[0] != m.shape[1]:
            raise ConfigError(f"Linear needs a square non-empty matrix, got shape {tuple(m.shape)}")
        self.dim = m.shape[0]
        self.register_constant("M", m, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return F.linear(x, self.constant("M", x))

    def lipschitz_bound(self) -> float:
        return float(spectral_norm(self.M))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
