"""Strictly upper-triangular index pairs (i < j) of a dim x dim matrix, as constant linear maps.

A vector a in R^m, m = dim (dim - 1) / 2, fills the strictly upper triangle of A. Two derived maps:

* ``incidence(dim)``: D in R^{m x dim}, D[k, i_k] = +1, D[k, j_k] = -1, so (A - A^T) 1 = D^T a
  (row sums minus column sums). Every row of D sums to zero, hence 1^T (A - A^T) 1 = 0.
* ``skew_basis(dim)``: E in R^{m x dim^2}, the k-th row is vec(e_i e_j^T - e_j e_i^T), so
  a^T E reshaped to (dim, dim) is a skew-symmetric matrix whose entries are +-a_k exactly
  (no arithmetic: skew-symmetry holds in floating point, not just to round-off).
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


def upper_pairs(dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.triu_indices(dim, dim, offset=1).unbind(0)


def incidence(dim: int) -> torch.Tensor:
    i, j = upper_pairs(dim)
    m = i.numel()
    d = torch.zeros(m, dim)
    rows = torch.arange(m)
    d[rows, i] = 1.0
    d[rows, j] = -1.0
    return d


def skew_basis(dim: int) -> torch.Tensor:
    i, j = upper_pairs(dim)
    m = i.numel()
    e = torch.zeros(m, dim, dim)
    rows = torch.arange(m)
    e[rows, i, j] = 1.0
    e[rows, j, i] = -1.0
    return e.reshape(m, dim * dim)


class UpperTriangleNet(Field):
    """Base of the fields built from the strictly upper triangle of a matrix A(x): its m = dim (dim - 1)/2
    entries are V^T Sigma(W x + w), W: (width, dim) ~ N(0, 1/dim), V: (width, m) ~ N(0, init_scale^2 /
    width), w ~ N(0, bias_scale^2) (0 gives zeros). Needs dim >= 2 (``why_dim``: the reason, for the error).

    A family with a low-rank form names it in ``low_rank``; ``Family(..., rank=k)`` then builds that class
    (``fields.low_rank``) with the same arguments instead."""

    #: the low-rank family built for ``rank=k`` (None: the family has no low-rank form)
    low_rank: type | None = None

    def __new__(cls, *args, rank: int | None = None, **kwargs):
        if rank is None:
            return super().__new__(cls)
        if cls.low_rank is None:
            raise ConfigError(f"{cls.__name__} has no low-rank form, got rank={rank!r}")
        return cls.low_rank(*args, rank=rank, **kwargs)

    def __init__(self, dim: int, width: int, activation: str, init_scale: float, bias_scale: float,
                 why_dim: str):
        super().__init__()
        self.dim = check_size("dim", dim)
        self.width = check_size("width", width)
        if dim < 2:
            raise ConfigError(f"{type(self).__name__} needs dim >= 2 ({why_dim}), got dim={dim}")
        self.activation = get_activation(activation)
        pairs = dim * (dim - 1) // 2
        self.W = nn.Parameter(torch.randn(width, dim) / math.sqrt(dim))
        self.w = nn.Parameter(torch.randn(width) * bias_scale if bias_scale else torch.zeros(width))
        self.V = nn.Parameter(torch.randn(width, pairs) * (checks.init_scale(init_scale) / math.sqrt(width)))

    def upper(self, x: torch.Tensor) -> torch.Tensor:
        """The strictly upper-triangular entries of A(x), shape (batch, dim (dim - 1) / 2)."""
        return self.activation.fn(F.linear(x, self.W, self.w)) @ self.V

    def extra_repr(self) -> str:
        return f"dim={self.dim}, width={self.width}, activation={self.activation.name!r}"
