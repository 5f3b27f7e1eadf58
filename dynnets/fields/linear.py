"""A linear vector field F(x) = M x, fixed (a buffer) or trainable."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..base import Field
from ..errors import ConfigError
from ..linalg import spectral_norm


class Linear(Field):
    """F(x) = M x. With ``trainable=False`` (default) M is a buffer: a fixed field for classical
    solvers and for convergence-order tests on problems with known solutions (x(t) = exp(t M) x0)."""

    def __init__(self, matrix, *, trainable: bool = False):
        super().__init__()
        m = torch.as_tensor(matrix, dtype=torch.float64) if not isinstance(matrix, torch.Tensor) else matrix
        if m.is_complex():
            raise ConfigError(f"Linear needs a real matrix, got dtype {m.dtype} (the imaginary part would be dropped)")
        dtype = m.dtype if isinstance(matrix, torch.Tensor) and m.is_floating_point() else torch.get_default_dtype()
        if m.dim() != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
            raise ConfigError(f"Linear needs a square non-empty matrix, got shape {tuple(m.shape)}")
        if not bool(torch.isfinite(m).all()):
            raise ConfigError("Linear needs a finite matrix, got NaN or inf entries")
        self.dim = m.shape[0]
        if trainable:
            self.M = nn.Parameter(m.to(dtype).clone())
        else:
            self.register_constant("M", m, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return F.linear(x, self.M)

    def lipschitz_bound(self) -> float:
        return float(spectral_norm(self.M))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
