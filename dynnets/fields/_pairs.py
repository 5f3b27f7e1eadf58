"""Strictly upper-triangular index pairs (i < j) of a dim x dim matrix, as constant linear maps.

A vector a in R^m, m = dim (dim - 1) / 2, fills the strictly upper triangle of A. Two derived maps:

* ``incidence(dim)``: D in R^{m x dim}, D[k, i_k] = +1, D[k, j_k] = -1, so (A - A^T) 1 = D^T a
  (row sums minus column sums). Every row of D sums to zero, hence 1^T (A - A^T) 1 = 0.
* ``skew_basis(dim)``: E in R^{m x dim^2}, the k-th row is vec(e_i e_j^T - e_j e_i^T), so
  a^T E reshaped to (dim, dim) is a skew-symmetric matrix whose entries are +-a_k exactly
  (no arithmetic: skew-symmetry holds in floating point, not just to round-off).
"""

from __future__ import annotations

import torch


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
