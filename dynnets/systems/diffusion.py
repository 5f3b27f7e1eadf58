"""Semi-discretised 2-D periodic heat and Fisher equations (method of lines) on states (batch, 1, n, n):
heat U' = alpha L * U, Fisher U' = alpha L * U + U - U^2, L a Laplacian stencil (``stencils.laplacian``)
applied with wrap-around on a ``PeriodicGrid2D``.

Explicit Runge-Kutta steps need dt * stiffness() <= r, [-r, 0] the method's real stability interval: heat
rho(alpha L) (the exact symbol maximum), Fisher rho + max(0, 2 m1 - 1) for U in ``state_range`` [m0, m1] (a
frozen-coefficient criterion, by Weyl's inequality; docs/fisher.md).
"""

from __future__ import annotations

import torch

from ..base import Field
from ..checks import positive_real, real
from ..errors import ConfigError, ConfigTypeError, ShapeError
from .grids import PeriodicGrid2D
from .stencils import apply_taps, laplacian, stencil_symbol, stencil_taps


class _Diffusion2D(Field):
    """alpha L * U (+ reaction in subclasses) on a periodic grid; no parameters."""

    equation = "heat"

    def __init__(self, grid: PeriodicGrid2D, alpha: float = 0.01, stencil: str = "5pt"):
        super().__init__()
        if not isinstance(grid, PeriodicGrid2D):
            raise ConfigTypeError(f"grid must be a dynnets.systems.PeriodicGrid2D, got {type(grid).__name__}")
        self.grid = grid
        self.alpha = positive_real("alpha (diffusivity)", alpha)
        self.stencil = stencil
        self.dim = grid.n
        self.state_ndim = 3  # (batch, 1, n, n)
        self.register_constant("kernel", laplacian(stencil, grid.dx))
        self._taps = stencil_taps(self.kernel)
        symbol = stencil_symbol(self.kernel, grid.n)
        if float(symbol.imag.abs().max()) > 1e-12 * float(symbol.abs().max()) or float(symbol.real.max()) > 1e-9:
            raise ConfigError(f"stencil {stencil!r} is not a symmetric negative semi-definite Laplacian")
        self._rho = self.alpha * float((-symbol.real).max())

    def check_input(self, u: torch.Tensor) -> None:
        n = self.grid.n
        if u.dim() != 4 or tuple(u.shape[1:]) != (1, n, n):
            raise ShapeError(f"{type(self).__name__} expects (batch, 1, {n}, {n}), got shape {tuple(u.shape)}")

    def diffusion(self, u: torch.Tensor) -> torch.Tensor:
        return self.alpha * apply_taps(self._taps, u)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        self.check_input(u)
        return self.diffusion(u)

    def stiffness(self) -> float:
        """rho = max |eigenvalue of alpha L| (exact symbol maximum on this grid)."""
        return self._rho

    def growth_bound(self, c: float) -> float:
        """b(c) = the largest real part of the spectrum of DF(c 1): 0 for heat (alpha L <= 0, 0 on constants)."""
        return 0.0

    def _rule(self) -> str:
        return f"dt * rho(alpha L) = dt * {self._rho:.6g}"

    def describe_instability(self, h: float, interval: float, method_name: str) -> str:
        return (f"on the 2-D {self.equation} equation (alpha={self.alpha:.6g}, dx={self.grid.dx:.6g}, stencil "
                f"{self.stencil}) with dt={h:.6g}, {self._rule()} = {h * self.stiffness():.6g} exceeds the real "
                f"stability interval {interval:.6g} of {method_name}")

    def extra_repr(self) -> str:
        return f"grid={self.grid!r}, alpha={self.alpha:.4g}, stencil={self.stencil!r}"


class HeatField2D(_Diffusion2D):
    """F(U) = alpha L * U: the 2-D periodic heat equation after FD discretisation in space."""


class FisherField2D(_Diffusion2D):
    """F(U) = alpha L * U + U - U^2 (Fisher-KPP); ``state_range`` = (m0, m1): the range of U the stability
    check covers."""

    equation = "Fisher"

    def __init__(self, grid: PeriodicGrid2D, alpha: float = 0.01, stencil: str = "5pt",
                 state_range: tuple[float, float] = (0.0, 1.0)):
        super().__init__(grid, alpha, stencil)
        m0, m1 = (real("a state_range end", v) for v in state_range)
        if not m0 <= m1:
            raise ConfigError(f"state_range must be (m0, m1) with m0 <= m1, got {state_range!r}")
        self.state_range = (m0, m1)

    def reaction(self, u: torch.Tensor) -> torch.Tensor:
        return u - u * u

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        self.check_input(u)
        return self.diffusion(u) + self.reaction(u)

    def growth_bound(self, c: float) -> float:
        """b(c) = 1 - 2c: DF(c 1) = alpha L + (1 - 2c) I, and alpha L <= 0 with 0 on constants."""
        return 1.0 - 2.0 * float(c)

    def stiffness(self) -> float:
        """rho(alpha L) + max(0, 2 m1 - 1): a bound of -lambda_min(J(U)) for U in [m0, m1]."""
        return self._rho + max(0.0, 2.0 * self.state_range[1] - 1.0)

    def _rule(self) -> str:
        m1 = self.state_range[1]
        return (f"dt * (rho(alpha L) + max(0, 2 m1 - 1)) = dt * ({self._rho:.6g} + {max(0.0, 2 * m1 - 1):.6g}) "
                f"for states in [{self.state_range[0]:.6g}, {m1:.6g}]")
