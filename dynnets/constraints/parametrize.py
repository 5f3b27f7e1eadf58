"""Weight constraints as ``torch.nn.utils.parametrize`` parametrisations, enforced by construction (e.g.
``register_parametrization(field, "A", SpectralNormBound(1.0))``). Each validates the tensor at registration
(``right_inverse``, typed error), maps any tensor into the set (``forward``) and measures membership
(``defect(W)``, 0 inside); ``certified = True`` marks membership by construction from exact quantities.
Bounds never trust a parametrisation: they recompute exact norms.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import linalg
from ..checks import positive_real
from ..errors import ConfigError, ShapeError

__all__ = ["ConvSpectralNormBound", "Orthogonal", "SpectralNormBound", "orthogonality_penalty"]


def _check_finite(name: str, w: torch.Tensor) -> None:
    if not bool(torch.isfinite(w).all()):
        raise ConfigError(f"{name} needs a finite tensor, got NaN or inf entries")


def _check_matrix(name: str, w: torch.Tensor) -> None:
    if w.dim() != 2 or w.numel() == 0:
        raise ShapeError(f"{name} needs a non-empty matrix, got shape {tuple(w.shape)}")


class SpectralNormBound(nn.Module):
    """W -> W / max(1, ||W||_2 / c): the exact (SVD) projection onto {||W||_2 <= c} along rays;
    ``right_inverse(W)`` = W (a preimage when ||W||_2 <= c, else rescaled onto the sphere)."""

    certified = True

    def __init__(self, c: float = 1.0):
        super().__init__()
        self.c = positive_real("a spectral-norm bound c", c, symbol="c")

    def _check(self, w: torch.Tensor) -> None:
        _check_matrix("SpectralNormBound", w)

    def norm(self, w: torch.Tensor) -> torch.Tensor:
        return linalg.spectral_norm(w)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        self._check(w)
        return w / torch.clamp(self.norm(w) / self.c, min=1.0)

    def right_inverse(self, w: torch.Tensor) -> torch.Tensor:
        self._check(w)
        _check_finite(type(self).__name__, w)
        return w

    @torch.no_grad()
    def defect(self, w: torch.Tensor) -> float:
        """max(0, ||W||_2 - c) / c with the exact norm (float64)."""
        return max(0.0, float(self.norm(w.detach().double())) - self.c) / self.c

    def extra_repr(self) -> str:
        return f"c={self.c:g}"


class ConvSpectralNormBound(SpectralNormBound):
    """K -> K / max(1, ||K||_op / c) for a circular convolution kernel (C_out, C_in, k1, k2) acting on an
    ``input_size`` = (n1, n2) grid (exact FFT-symbol norm); a kernel larger than the grid or of even size is
    refused at registration."""

    def __init__(self, c: float, input_size):
        super().__init__(c)
        self.input_size = linalg.check_grid(input_size)

    def _check(self, w: torch.Tensor) -> None:
        linalg.check_conv_kernel(w, self.input_size)

    def norm(self, w: torch.Tensor) -> torch.Tensor:
        return linalg.conv_spectral_norm(w, self.input_size)

    def extra_repr(self) -> str:
        return f"c={self.c:g}, input_size={self.input_size}"


class Orthogonal(nn.Module):
    """X -> Q with orthonormal columns (W^T W = I, tall W) or rows (W W^T = I, wide W), by the QR
    factorisation X = Q R with diag R > 0 (smooth on full-rank X); defect(W) = ||W^T W - I||_2 (or W W^T)."""

    certified = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_matrix("Orthogonal", x)
        wide = x.shape[0] < x.shape[1]
        m = x.T if wide else x
        q, r = torch.linalg.qr(m)
        d = torch.diagonal(r)
        q = q * torch.where(d >= 0, 1.0, -1.0).to(q.dtype)
        return q.T if wide else q

    def right_inverse(self, w: torch.Tensor) -> torch.Tensor:
        _check_matrix("Orthogonal", w)
        _check_finite("Orthogonal", w)
        return w

    @torch.no_grad()
    def defect(self, w: torch.Tensor) -> float:
        w = w.detach().double()
        g = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
        return float(linalg.spectral_norm(g - torch.eye(g.shape[0], dtype=g.dtype)))


def orthogonality_penalty(w: torch.Tensor) -> torch.Tensor:
    """||W^T W - I||_F^2: a training penalty that *pushes towards* orthogonality (as in published code);
    not a constraint: nothing certified may rely on it."""
    g = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    return (g - torch.eye(g.shape[0], dtype=g.dtype, device=g.device)).square().sum()
