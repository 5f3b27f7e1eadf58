"""The Yi eigen-ODE as a fixed vector field (Yi, Fu, Tang 2004; Puleo et al. 2022, eqs. 17-18):
dx/dt = -x + [x^T x A + (1 - x^T A x) I] x = (x^T x) A x - (x^T A x) x = S(x) x, S(x) = A x x^T - x x^T A
skew (A = A^T), so ||x|| is a first integral, kept to round-off by the Cayley step. The equilibria are the
eigenvectors of A; from any x(0) not orthogonal to the top eigenspace the flow converges to it.
"""

from __future__ import annotations

import numpy as np
import torch

from ..base import Field
from ..checks import positive_real
from ..errors import ConfigError
from ..structure import SkewProduct

__all__ = ["SYMMETRY_C", "NotSymmetricError", "YiField", "check_symmetric"]

#: C in the symmetry rule max|A - A^T| <= C * n * eps * max|A|
SYMMETRY_C = 8.0


class NotSymmetricError(ConfigError):
    """A matrix given to an eigen-solver is not square, not finite, or not symmetric to round-off."""


def check_symmetric(matrix, *, name: str = "A") -> torch.Tensor:
    """``matrix`` as a float64 tensor (device kept), non-empty, square, finite and symmetric to round-off,
    max|A - A^T| <= C n eps max|A| (C = ``SYMMETRY_C``, float64 eps); else ``NotSymmetricError``."""
    if isinstance(matrix, torch.Tensor):
        a = matrix.detach()
    else:  # lists / NumPy: go through float64 (torch.as_tensor of Python floats would give float32)
        try:
            a = torch.from_numpy(np.array(matrix, dtype=np.complex128 if np.iscomplexobj(matrix) else np.float64))
        except (TypeError, ValueError) as err:
            raise NotSymmetricError(f"{name} must be a real numeric matrix ({err})") from None
    if a.is_complex():
        raise NotSymmetricError(f"{name} must be a real matrix, got dtype {a.dtype}")
    a = a.to(torch.float64)
    if a.dim() != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        raise NotSymmetricError(f"{name} must be a non-empty square matrix, got shape {tuple(a.shape)}")
    if not bool(torch.isfinite(a).all()):
        bad = int((~torch.isfinite(a)).sum())
        raise NotSymmetricError(f"{name} must be finite, got {bad} NaN/inf entr{'y' if bad == 1 else 'ies'}")
    n = a.shape[0]
    scale = float(a.abs().max())
    asym = float((a - a.T).abs().max())
    limit = SYMMETRY_C * n * torch.finfo(torch.float64).eps * scale
    if asym > limit:
        i, j = divmod(int((a - a.T).abs().argmax()), n)
        raise NotSymmetricError(
            f"{name} must be symmetric to round-off: max|A - A^T| = {asym:.3e} (at [{i}, {j}]) exceeds "
            f"C n eps max|A| = {SYMMETRY_C:g} * {n} * {torch.finfo(torch.float64).eps:.2e} * {scale:.3e} = {limit:.3e}"
        )
    return a


def spread_bound(a: torch.Tensor) -> float:
    """Certified upper bound of lambda_max(A) - lambda_min(A) from Gershgorin discs (no eigen-solve)."""
    d = torch.diagonal(a)
    r = a.abs().sum(dim=1) - d.abs()
    return float((d + r).max() - (d - r).min())


class YiField(Field):
    """F(x) = S(x) x (module docstring); ``matrix`` checked by ``check_symmetric`` and stored symmetrised,
    ``radius`` the norm ||x|| of the states the explicit step-size check covers."""

    traits = frozenset({SkewProduct()})

    def __init__(self, matrix, radius: float = 1.0):
        super().__init__()
        a = check_symmetric(matrix)
        self.radius = positive_real("radius (the norm of the states the step-size check covers)", radius)
        self.register_constant("A", (a + a.T) / 2)
        self.dim = a.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        ax = x @ self.constant("A", x)
        xx = (x * x).sum(dim=-1, keepdim=True)
        xax = (x * ax).sum(dim=-1, keepdim=True)
        return xx * ax - xax * x

    def skew(self, x: torch.Tensor) -> torch.Tensor:
        """S(x) = A x x^T - x x^T A, exactly skew (u v^T - v u^T)."""
        self.check_input(x)
        ax = x @ self.constant("A", x)
        outer = ax.unsqueeze(-1) * x.unsqueeze(-2)
        return outer - outer.transpose(-1, -2)

    def rayleigh(self, x: torch.Tensor) -> torch.Tensor:
        """rho(x) = x^T A x / x^T x (eq. 20), shape (batch,)."""
        return (x * (x @ self.constant("A", x))).sum(-1) / (x * x).sum(-1)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """||A x - rho(x) x|| / ||x||, zero exactly at eigenvectors; shape (batch,)."""
        g = x @ self.constant("A", x) - self.rayleigh(x).unsqueeze(-1) * x
        return g.norm(dim=-1) / x.norm(dim=-1)

    def stiffness(self) -> float:
        """radius^2 * spread(A) (Gershgorin bound): the Jacobian at the top eigenvector on ||x|| = radius
        has eigenvalues radius^2 (lambda_j - lambda_1) <= 0; rule h radius^2 spread <= r (linearised)."""
        return self.radius**2 * spread_bound(self.A)

    def describe_instability(self, h: float, interval: float, method_name: str) -> str:
        return (f"h * ||x||^2 * spread(A) = {h:.6g} * {self.radius:.6g}^2 * {spread_bound(self.A):.6g} = "
                f"{h * self.stiffness():.6g} exceeds the real stability interval {interval:.6g} of {method_name} "
                "(the stability limit on the sphere ||x|| = radius; spread bounded by Gershgorin discs)")

    def extra_repr(self) -> str:
        return f"dim={self.dim}, radius={self.radius:g}"
