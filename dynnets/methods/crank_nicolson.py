"""Crank-Nicolson (implicit trapezoidal rule) for affine fields F(x) = M x + c.

    x' = x + h/2 (F(x) + F(x'))   <=>   (I - h/2 M) x' = (I + h/2 M) x + h c

The linear system is solved directly (LU), so no iteration and no step-size restriction: for a
field whose M has its spectrum in the closed left half plane, |(1 + z/2)/(1 - z/2)| <= 1 (A-stable).
It is a Runge-Kutta method, so it preserves every linear invariant c^T x of a ConservesLinear field.
"""

from __future__ import annotations

import torch

from ..structure import Affine, ConservesLinear, LinearInvariant
from .base import Method


class CrankNicolson(Method):
    """Implicit trapezoidal rule for fields with the ``Affine`` trait (they expose ``affine_parts``).
    Order 2, A-stable. Cost: one dense LU solve of size dim per step."""

    name = "CrankNicolson"
    order = 2
    requires = (Affine,)

    def step(self, field, x: torch.Tensor, h) -> torch.Tensor:
        M, c = field.affine_parts(dtype=x.dtype, device=x.device)
        eye = torch.eye(M.shape[0], dtype=x.dtype, device=x.device)
        half = 0.5 * h
        lhs = eye - half * M
        rhs = x + half * (x @ M.T) + h * c
        return torch.linalg.solve(lhs, rhs.unsqueeze(-1)).squeeze(-1)

    def guarantees(self, field, h) -> frozenset:
        return frozenset(
            LinearInvariant(t.c) for t in getattr(field, "traits", ()) if isinstance(t, ConservesLinear)
        )
