"""Low-rank skew-product fields: S(x) = U(x) V(x)^T - V(x) U(x)^T with U(x), V(x) in R^{n x k}.

With W(x) = [U(x) V(x)] (n x 2k) and J = [[0, I_k], [-I_k, 0]], S(x) = W J W^T, so S(x) y = W (J (W^T y))
costs O(n k) per sample instead of O(n^2), and the Cayley step needs a 2k x 2k solve instead of an n x n
one (Woodbury identity, ``methods.Cayley``). S(x) has rank <= 2k.

The 2k columns w_j of W(x) share one hidden layer: z = sigma(A x + a) in R^width is split into 2k groups
z_j of g = width / (2k) units and w_j = P_j^T z_j, P_j in R^{g x n} (the rows of P in R^{width x n} that
belong to group j). So W(x) costs what a ``Dense`` field of the same width costs (A: width x n,
P: width x n), and never needs to be formed for F(x):

    y = W^T v:  y_j = sum_{r in group j} z_r (P v)_r,      W c = P^T (z * c_group(r)),

two products with P, like the output layer of a Dense field (v = x for the sphere field, v = 1 for the
mass field).

* ``LowRankSpherePreserving``: F(x) = S(x) x, so x^T F(x) = 0 (traits ``SkewProduct``,
  ``ConservesQuadratic(I)``); ``skew_factors(x)`` gives W for the Woodbury Cayley step.
* ``LowRankMassPreserving``: F(x) = (A(x) - A(x)^T) 1 with A(x) = U(x) V(x)^T, i.e. S(x) 1, so
  1^T F(x) = 1^T S(x) 1 = 0 (trait ``ConservesLinear(ones)``; every Runge-Kutta method keeps the mass),
  the low-rank form of ``MassPreserving`` (Celledoni, Murari, Owren, Schoenlieb, Sherry 2022).

Initialisation: A ~ N(0, 1/n) as ``Dense``; P ~ N(0, s / (g sqrt(2 k n))) with s = init_scale, so that
the entries of S(x) = sum_j u_j v_j^T - v_j u_j^T (quadratic in P) have a variance of about s^2 / n
times E[sigma^2]^2, i.e. ||S(x)||_2 of the order of s, independent of n, k and width.
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
from ..structure import ConservesLinear, ConservesQuadratic, SkewProduct
from .activations import get_activation


class _LowRankSkew(Field):
    """The factor network W(x) = [U(x) V(x)] shared by the low-rank families (module docstring)."""

    def __init__(self, dim: int, width: int, activation: str, rank: int, init_scale: float, bias_scale: float,
                 why_dim: str):
        super().__init__()
        self.dim = check_size("dim", dim)
        self.width = check_size("width", width)
        self.rank = check_size("rank", rank)
        if dim < 2:
            raise ConfigError(f"{type(self).__name__} needs dim >= 2 ({why_dim}), got dim={dim}")
        if width % (2 * rank):
            raise ConfigError(f"{type(self).__name__} splits width into 2 rank groups (one per column of U and V): "
                              f"width must be a multiple of 2 rank = {2 * rank}, got width={width}")
        self.activation = get_activation(activation)
        self.group = width // (2 * rank)
        scale = math.sqrt(checks.init_scale(init_scale) / (self.group * math.sqrt(2 * rank * dim)))
        self.A = nn.Parameter(torch.randn(width, dim) / math.sqrt(dim))
        self.a = nn.Parameter(torch.randn(width) * bias_scale if bias_scale else torch.zeros(width))
        self.P = nn.Parameter(torch.randn(width, dim) * scale)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """z = sigma(A x + a), shape (batch, width)."""
        self.check_input(x)
        return self.activation.fn(F.linear(x, self.A, self.a))

    def _apply_jw(self, z: torch.Tensor, pv: torch.Tensor) -> torch.Tensor:
        """W J W^T v from z and P v (shape (batch, width), or P 1 broadcast): y = W^T v summed per group,
        then W (J y) = P^T (z * (J y) repeated over each group)."""
        k, g = self.rank, self.group
        y = (z * pv).reshape(*z.shape[:-1], 2 * k, g).sum(-1)
        jy = torch.cat([y[..., k:], -y[..., :k]], dim=-1)
        return (z * jy.repeat_interleave(g, dim=-1)) @ self.P

    def skew_factors(self, x: torch.Tensor) -> torch.Tensor:
        """W(x)^T: the rows u_1..u_k, v_1..v_k, shape (batch, 2 rank, dim), S(x) = sum_j u_j v_j^T - v_j u_j^T."""
        # one matmul per column group on the group-major layout (2k, batch, g): cheaper than einsum's copies
        z = self.hidden(x).reshape(x.shape[0], 2 * self.rank, self.group).transpose(0, 1)
        return torch.bmm(z, self.P.reshape(2 * self.rank, self.group, self.dim)).transpose(0, 1)

    def skew_matrix(self, x: torch.Tensor) -> torch.Tensor:
        """S(x) = M - M^T with M = U V^T, shape (batch, dim, dim): skew-symmetric exactly in floating point."""
        w = self.skew_factors(x)
        m = w[:, : self.rank].transpose(-1, -2) @ w[:, self.rank:]
        return m - m.transpose(-1, -2)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, width={self.width}, rank={self.rank}, activation={self.activation.name!r}"


class LowRankSpherePreserving(_LowRankSkew):
    """F(x) = S(x) x with S(x) = U(x) V(x)^T - V(x) U(x)^T of rank <= 2 ``rank`` (module docstring): O(n k)
    per sample. ``width`` must be a multiple of 2 ``rank``. Needs dim >= 2.

    Traits ``SkewProduct`` and ``ConservesQuadratic(I)``; ``skew(x)`` returns the dense S(x) (batch, dim,
    dim), ``skew_factors(x)`` the factors, with which ``methods.Cayley`` solves a 2 rank x 2 rank system per
    sample instead of a dim x dim one.
    """

    def __init__(self, dim: int, width: int, activation: str = "tanh", *, rank: int, init_scale: float = 0.5):
        super().__init__(dim, width, activation, rank, init_scale, bias_scale=0.5,
                         why_dim="the only skew 1x1 matrix is 0")
        self.traits = frozenset({SkewProduct(), ConservesQuadratic(torch.eye(dim, dtype=torch.float64))})

    def skew(self, x: torch.Tensor) -> torch.Tensor:
        return self.skew_matrix(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._apply_jw(self.hidden(x), x @ self.P.t())


class LowRankMassPreserving(_LowRankSkew):
    """F(x) = (A(x) - A(x)^T) 1 with A(x) = U(x) V(x)^T (module docstring): O(n k) per sample, 1^T F(x) = 0.
    ``width`` must be a multiple of 2 ``rank``. Needs dim >= 2. Trait ``ConservesLinear(ones)``."""

    def __init__(self, dim: int, width: int, activation: str = "tanh", *, rank: int, init_scale: float = 0.5):
        super().__init__(dim, width, activation, rank, init_scale, bias_scale=0.0,
                         why_dim="a 1-D mass-preserving field is 0")
        self.traits = frozenset({ConservesLinear((1.0,) * dim)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._apply_jw(self.hidden(x), self.P.sum(dim=1))
