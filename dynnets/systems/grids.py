"""Uniform grids: ``UniformGrid1D`` (Dirichlet data at nodes 0 and n) and ``PeriodicGrid2D`` (a torus)."""

from __future__ import annotations

import math

import torch

from ..checks import MAX_SIZE, check_int, positive_real, real
from ..errors import ConfigError, ShapeError


class UniformGrid1D:
    """n intervals of width dx = (b - a)/n on [a, b] (n + 1 nodes, n - 1 interior nodes)."""

    def __init__(self, a: float, b: float, n: int):
        a, b = real("grid end point a", a), real("grid end point b", b)
        if not a < b:
            raise ConfigError(f"a grid needs finite end points a < b, got a={a}, b={b}")
        n = check_int("the number of grid intervals n", n, minimum=2, maximum=MAX_SIZE)
        if not math.isfinite((b - a) / n) or (b - a) / n == 0.0:
            raise ConfigError(f"grid spacing (b - a)/n must be positive and finite, got a={a}, b={b}, n={n}")
        self.a, self.b, self.n = a, b, n
        self.dx = (b - a) / n

    def nodes(self, dtype=torch.float64, device=None) -> torch.Tensor:
        """All n + 1 nodes, end points exact."""
        i = torch.arange(self.n + 1, dtype=dtype, device=device)
        x = self.a + i * self.dx
        x[-1] = self.b
        return x

    def interior(self, dtype=torch.float64, device=None) -> torch.Tensor:
        return self.nodes(dtype, device)[1:-1]

    def sample(self, u0, dtype=torch.float64, device=None) -> torch.Tensor:
        """Initial data on the interior nodes from a callable u0(x) (given the interior nodes as a
        float64 tensor; may return a tensor, array or list) or from an array of length n + 1 (all
        nodes; the two end values are dropped, Dirichlet data rule there) or n - 1 (interior)."""
        if callable(u0):
            values = _as_tensor(u0(self.interior(torch.float64)), "u0(x)")
            if values.shape != (self.n - 1,):
                raise ShapeError(f"u0(x) on the {self.n - 1} interior nodes must return {self.n - 1} values, "
                                 f"got shape {tuple(values.shape)}")
        else:
            values = _as_tensor(u0, "u0")
            if values.dim() != 1 or values.shape[0] not in (self.n + 1, self.n - 1):
                raise ShapeError(f"u0 given as an array must have length n + 1 = {self.n + 1} (all nodes) or "
                                 f"n - 1 = {self.n - 1} (interior nodes), got shape {tuple(values.shape)}")
            if values.shape[0] == self.n + 1:
                values = values[1:-1]
        if not torch.isfinite(values).all():
            bad = int((~torch.isfinite(values)).nonzero()[0])
            raise ConfigError(f"initial data must be finite, got u0 = {float(values[bad])} at interior node "
                              f"{bad + 1}")
        return values.to(dtype=dtype, device=device)

    def __repr__(self) -> str:
        return f"UniformGrid1D(a={self.a}, b={self.b}, n={self.n}, dx={self.dx:.4g})"


def _as_tensor(values, what: str) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values.detach().to(torch.float64)
    try:
        return torch.as_tensor(values, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ConfigError(f"{what} must be an array of real numbers ({err})") from None


class PeriodicGrid2D:
    """n x n nodes of the torus [0, L)^2, spacing dx = L/n."""

    def __init__(self, n: int, length: float = 1.0):
        n = check_int("a periodic grid's number of nodes n", n, minimum=3, maximum=MAX_SIZE)
        length = positive_real("the period L", length, symbol="L")
        self.n, self.length = n, length
        self.dx = length / n

    def coordinates(self, dtype=torch.float64, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(X, Y), each (n, n), with X[iy, ix] = ix dx and Y[iy, ix] = iy dx."""
        x = torch.arange(self.n, dtype=dtype, device=device) * self.dx
        yy, xx = torch.meshgrid(x, x, indexing="ij")
        return xx, yy

    def wavenumbers(self, dtype=torch.float64, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Integer wavenumbers (KX, KY) of torch.fft.fft2 on this grid (mode exp(2 pi i (kx x + ky y)/L))."""
        k = torch.fft.fftfreq(self.n, d=1.0 / self.n, dtype=dtype, device=device)
        ky, kx = torch.meshgrid(k, k, indexing="ij")
        return kx, ky

    def __repr__(self) -> str:
        return f"PeriodicGrid2D(n={self.n}, L={self.length}, dx={self.dx:.4g})"
