"""The 1-D heat equation u_t = alpha u_xx on [a, b] with Dirichlet data, by the method of lines on a
``UniformGrid1D``: the interior values U(t) in R^(n-1) satisfy U' = alpha (D2 U + e), D2 = tridiag(1, -2,
1)/dx^2, e = (left, 0, ..., 0, right)/dx^2 (explicit Euler of it is FTCS; Crank-Nicolson uses its ``Affine``
trait). The eigenvalues of alpha D2 lie in (-4 alpha/dx^2, 0), so an explicit method with real stability
interval [-r, 0] is stable when alpha dt/dx^2 <= r/4 (1/2 for Euler: LeVeque 2007, sec. 9.4); a larger step
is refused.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch

from ..base import Field
from ..checks import positive_real, real
from ..errors import ConfigTypeError
from ..structure import Affine
from .grids import UniformGrid1D


def _nice(x: float) -> str:
    """1/2 rather than 0.5 when x is a simple fraction."""
    f = Fraction(x).limit_denominator(64)
    if f.denominator > 1 and abs(float(f) - x) <= 1e-12 * abs(x):
        return f"{f.numerator}/{f.denominator}"
    return f"{x:.6g}"


class HeatField1D(Field):
    """F(U) = alpha (D2 U + e) on the interior nodes of ``grid`` (Dirichlet values ``left``, ``right``); alpha
    and the boundary values are buffers."""

    traits = frozenset({Affine()})

    def __init__(self, grid: UniformGrid1D, alpha: float = 1.0, left: float = 0.0, right: float = 0.0):
        super().__init__()
        if not isinstance(grid, UniformGrid1D):
            raise ConfigTypeError(f"grid must be a dynnets.systems.UniformGrid1D, got {type(grid).__name__}")
        alpha = positive_real("the diffusivity alpha", alpha, symbol="alpha")
        self.grid = grid
        self.dim = grid.n - 1  # the interior nodes
        self.dx = grid.dx
        self.register_constant("alpha", alpha, dtype=torch.float64)
        self.register_constant("left", real("left", left), dtype=torch.float64)
        self.register_constant("right", real("right", right), dtype=torch.float64)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        self.check_input(u)
        full = self.with_boundary(u)  # the centred second difference D2 U + e
        d2 = (full[..., :-2] - 2.0 * full[..., 1:-1] + full[..., 2:]) / (self.dx * self.dx)
        return self.alpha.to(u.dtype) * d2

    def affine_parts(self, dtype=torch.float64, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(M, c) with F(U) = M U + c: M = alpha D2, c = alpha e (dense)."""
        a, m, dx2 = self.alpha.to(dtype=dtype, device=device), self.dim, self.dx * self.dx
        main = torch.full((m,), -2.0, dtype=dtype, device=device)
        off = torch.ones(m - 1, dtype=dtype, device=device)
        e = torch.zeros(m, dtype=dtype, device=device)
        e[0] = e[0] + self.left.to(dtype=dtype, device=device)
        e[-1] = e[-1] + self.right.to(dtype=dtype, device=device)
        return a * ((torch.diag(main) + torch.diag(off, 1) + torch.diag(off, -1)) / dx2), a * (e / dx2)

    def stiffness(self) -> float:
        """4 alpha / dx^2 >= the largest |eigenvalue| of alpha D2 (all eigenvalues are real, < 0)."""
        return 4.0 * float(self.alpha) / self.dx**2

    def describe_instability(self, h: float, interval: float, method_name: str) -> str:
        alpha = float(self.alpha)
        return (f"alpha*dt/dx^2 = {alpha * h / self.dx**2:.6g} for dt={h:.6g}, dx={self.dx:.6g}"
                f"{'' if alpha == 1.0 else f', alpha={alpha:.6g}'} exceeds the limit {_nice(interval / 4.0)} (real "
                f"stability interval {interval:.6g} of {method_name} divided by 4); a smaller dt or an implicit "
                "method (CrankNicolson) is stable")

    def with_boundary(self, u: torch.Tensor) -> torch.Tensor:
        """All n + 1 nodal values: interior ``u`` (..., n - 1) with the Dirichlet end values."""
        shape = u.shape[:-1] + (1,)
        lo, hi = (v.to(dtype=u.dtype, device=u.device).expand(shape) for v in (self.left, self.right))
        return torch.cat([lo, u, hi], dim=-1)

    def extra_repr(self) -> str:
        return (f"grid={self.grid!r}, alpha={float(self.alpha):.4g}, left={float(self.left):.4g}, "
                f"right={float(self.right):.4g}")


def sine_mode_solution(x: torch.Tensor, t: float, k: int = 1, alpha: float = 1.0, length: float = 1.0):
    """The exact solution sin(k pi x/L) exp(-alpha (k pi/L)^2 t) of u_t = alpha u_xx on [0, L] with
    u(x, 0) = sin(k pi x/L) and zero Dirichlet data (the seed's eq. (6) for k = 1, alpha = L = 1)."""
    w = k * math.pi / length
    return torch.sin(w * x) * math.exp(-alpha * w * w * t)
