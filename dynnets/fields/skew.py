"""Skew-symmetric matrix fields S(x), the shared part of the mass, sphere and quadratic families; each module
has ``apply(x, v)`` = S(x) v (one v per row), ``row_sums(x)`` = S(x) 1, ``matrix(x)`` = S(x), ``factors(x)``.

* ``UpperTriangleSkew`` (full rank): the m = n (n - 1) / 2 strictly upper entries of M(x) are u(x) =
  V^T Sigma(W x + w), S(x) = M(x) - M(x)^T, placed as +-u_k by one scatter (O(n^2), exactly skew).
  Init: W ~ N(0, 1/n), w ~ N(0, bias_scale^2), V ~ N(0, s^2 / width).
* ``LowRankSkew`` (rank k): S(x) = W J W^T, W = [U V] (n x 2k), J = [[0, I_k], [-I_k, 0]]: S(x) y costs O(n k)
  and the Cayley step a 2k x 2k solve. The columns w_j = P_j^T z_j share one hidden layer z = sigma(A x + a),
  split into 2k groups of g = width / (2k) units (P in R^{width x n}). Init: A ~ N(0, 1/n),
  P ~ N(0, s / (g sqrt(2 k n))), so that ||S(x)||_2 is of the order of s = init_scale whatever n, k, width.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from ..base import Field
from ..checks import check_size
from ..errors import ConfigError
from .activations import get_activation


class UpperTriangleSkew(nn.Module):
    """S(x) = M(x) - M(x)^T, strict upper triangle of M(x) = V^T Sigma(W x + w) (module docstring)."""

    def __init__(self, dim: int, width: int, activation: str, init_scale: float, bias_scale: float):
        super().__init__()
        self.dim, self.activation = dim, get_activation(activation)
        pairs = dim * (dim - 1) // 2
        self.W = nn.Parameter(torch.randn(width, dim) / math.sqrt(dim))
        self.w = nn.Parameter(torch.randn(width) * bias_scale if bias_scale else torch.zeros(width))
        self.V = nn.Parameter(torch.randn(width, pairs) * (checks.init_scale(init_scale) / math.sqrt(width)))
        rows, cols = torch.triu_indices(dim, dim, offset=1)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        # flat positions of (i_k, j_k), then of (j_k, i_k): S is one scatter of (u, -u) into zeros
        self.register_buffer("placement", torch.cat([rows * dim + cols, cols * dim + rows]), persistent=False)

    def upper(self, x: torch.Tensor) -> torch.Tensor:
        """u(x), shape (batch, n (n - 1) / 2)."""
        return self.activation.fn(F.linear(x, self.W, self.w)) @ self.V

    def matrix(self, x: torch.Tensor) -> torch.Tensor:
        u = self.upper(x).reshape(-1, self.rows.numel())
        signed = torch.cat([u, -u], dim=-1)
        s = signed.new_zeros(u.shape[0], self.dim * self.dim).scatter(1, self.placement.expand_as(signed), signed)
        return s.reshape(*x.shape[:-1], self.dim, self.dim)

    def apply(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return (self.matrix(x) @ v.unsqueeze(-1)).squeeze(-1)

    def row_sums(self, x: torch.Tensor) -> torch.Tensor:
        """S(x) 1 = (V D)^T sigma(W x + w), D the pairs' incidence matrix (+1 at row i_k, -1 at row j_k)."""
        vd = self.V.new_zeros(self.V.shape[0], self.dim).index_add(1, self.rows, self.V)
        vd = vd.index_add(1, self.cols, -self.V)
        return self.activation.fn(F.linear(x, self.W, self.w)) @ vd

    def factors(self, x: torch.Tensor) -> None:
        return None  # no low-rank factorisation

    def product_jacobian(self, x: torch.Tensor, v: torch.Tensor, dv: torch.Tensor) -> torch.Tensor | None:
        """D [S(x) v(x)] for v(x) with constant Jacobian dv (n x n): S(x) dv + [E_k v]_k du/dx, where E_k v
        = e_i v_j - e_j v_i for the pair k = (i, j) and du/dx = V^T diag(sigma'(W x + w)) W. None when the
        activation has no jet (sigma')."""
        if self.activation.jet is None:
            return None
        _, slope, _ = self.activation.jet(F.linear(x, self.W, self.w))               # (batch, width)
        du = (self.V.t().unsqueeze(0) * slope.unsqueeze(1)) @ self.W                  # (batch, m, n)
        k = torch.arange(self.rows.numel(), device=x.device)
        ev = x.new_zeros(x.shape[0], self.dim, k.numel())                             # (batch, n, m)
        ev[:, self.rows, k] = v[:, self.cols]
        ev[:, self.cols, k] = -v[:, self.rows]
        return self.matrix(x) @ dv + ev @ du


class LowRankSkew(nn.Module):
    """S(x) = W(x) J W(x)^T, W(x) = [U(x) V(x)] (module docstring); ``width`` a multiple of 2 ``rank``."""

    def __init__(self, dim: int, width: int, activation: str, rank: int, init_scale: float, bias_scale: float):
        super().__init__()
        self.dim, self.rank = dim, check_size("rank", rank)
        if width % (2 * rank):
            raise ConfigError(f"rank={rank} splits width into 2 rank groups (one per column of U and V): width must "
                              f"be a multiple of 2 rank = {2 * rank}, got width={width}")
        self.activation = get_activation(activation)
        self.group = width // (2 * rank)
        scale = math.sqrt(checks.init_scale(init_scale) / (self.group * math.sqrt(2 * rank * dim)))
        self.A = nn.Parameter(torch.randn(width, dim) / math.sqrt(dim))
        self.a = nn.Parameter(torch.randn(width) * bias_scale if bias_scale else torch.zeros(width))
        self.P = nn.Parameter(torch.randn(width, dim) * scale)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation.fn(F.linear(x, self.A, self.a))

    def _apply_jw(self, z: torch.Tensor, pv: torch.Tensor) -> torch.Tensor:
        """W J W^T v from z and P v: y = W^T v summed per group, then W (J y) = P^T (z * (J y) per group)."""
        k, g = self.rank, self.group
        y = (z * pv).reshape(*z.shape[:-1], 2 * k, g).sum(-1)
        jy = torch.cat([y[..., k:], -y[..., :k]], dim=-1)
        return (z * jy.repeat_interleave(g, dim=-1)) @ self.P

    def apply(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self._apply_jw(self.hidden(x), v @ self.P.t())

    def row_sums(self, x: torch.Tensor) -> torch.Tensor:
        return self._apply_jw(self.hidden(x), self.P.sum(dim=1))

    def factors(self, x: torch.Tensor) -> torch.Tensor:
        """W(x)^T: the rows u_1..u_k, v_1..v_k, shape (batch, 2 rank, n), S(x) = sum_j u_j v_j^T - v_j u_j^T."""
        # one matmul per column group on the group-major layout (2k, batch, g): cheaper than einsum's copies
        z = self.hidden(x).reshape(x.shape[0], 2 * self.rank, self.group).transpose(0, 1)
        return torch.bmm(z, self.P.reshape(2 * self.rank, self.group, self.dim)).transpose(0, 1)

    def matrix(self, x: torch.Tensor) -> torch.Tensor:
        """S(x) = M - M^T with M = U V^T, shape (batch, n, n): skew-symmetric exactly in floating point."""
        w = self.factors(x)
        m = w[:, : self.rank].transpose(-1, -2) @ w[:, self.rank:]
        return m - m.transpose(-1, -2)

    def product_jacobian(self, x, v, dv) -> None:
        return None  # no closed form: the field falls back to autodiff


class SkewField(Field):
    """A field on a learned S(x), ``net``: full rank (``rank=None``) or rank k; needs dim >= 2 (``why``)."""

    def __init__(self, dim: int, width: int, activation: str, rank: int | None, init_scale: float,
                 bias_scale: float, why: str):
        super().__init__()
        self.dim, self.width = check_size("dim", dim), check_size("width", width)
        if self.dim < 2:
            raise ConfigError(f"{type(self).__name__} needs dim >= 2 ({why}), got dim={self.dim}")
        self.rank = rank
        if rank is None:
            self.net = UpperTriangleSkew(self.dim, self.width, activation, init_scale, bias_scale)
        else:
            self.net = LowRankSkew(self.dim, self.width, activation, rank, init_scale, bias_scale)

    def skew_factors(self, x: torch.Tensor) -> torch.Tensor | None:
        self.check_input(x)
        return self.net.factors(x)

    def extra_repr(self) -> str:
        rank = "" if self.rank is None else f", rank={self.rank}"
        return f"dim={self.dim}, width={self.width}, activation={self.net.activation.name!r}{rank}"
