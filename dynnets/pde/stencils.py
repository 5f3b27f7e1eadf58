"""Finite-difference stencils on uniform 1-D grids with Dirichlet end values.

The centred second difference (u_{i-1} - 2 u_i + u_{i+1}) / dx^2 approximates u_xx to O(dx^2);
on the interior nodes 1..n-1 with end values u_0 = left, u_n = right it is the affine map
D2 u + e, D2 = tridiag(1, -2, 1)/dx^2 and e = (left, 0, ..., 0, right)/dx^2.
"""

from __future__ import annotations

import torch


def second_difference(u: torch.Tensor, dx: float, left, right) -> torch.Tensor:
    """Centred second difference along the last axis of ``u`` (interior values), with Dirichlet
    end values ``left`` and ``right`` (numbers or 0-d tensors)."""
    shape = u.shape[:-1] + (1,)
    lo = torch.as_tensor(left, dtype=u.dtype, device=u.device).expand(shape)
    hi = torch.as_tensor(right, dtype=u.dtype, device=u.device).expand(shape)
    full = torch.cat([lo, u, hi], dim=-1)
    return (full[..., :-2] - 2.0 * full[..., 1:-1] + full[..., 2:]) / (dx * dx)


def second_difference_matrix(m: int, dx: float, dtype=torch.float64, device=None) -> torch.Tensor:
    """The m x m matrix tridiag(1, -2, 1)/dx^2 (homogeneous Dirichlet ends), dense."""
    main = torch.full((m,), -2.0, dtype=dtype, device=device)
    off = torch.ones(m - 1, dtype=dtype, device=device)
    return (torch.diag(main) + torch.diag(off, 1) + torch.diag(off, -1)) / (dx * dx)


def dirichlet_vector(m: int, dx: float, left, right, dtype=torch.float64, device=None) -> torch.Tensor:
    """The boundary contribution e = (left, 0, ..., 0, right)/dx^2 of the second difference."""
    e = torch.zeros(m, dtype=dtype, device=device)
    e[0] = e[0] + torch.as_tensor(left, dtype=dtype, device=device)
    e[-1] = e[-1] + torch.as_tensor(right, dtype=dtype, device=device)
    return e / (dx * dx)
