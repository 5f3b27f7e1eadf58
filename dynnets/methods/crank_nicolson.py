"""Crank-Nicolson (implicit trapezoidal rule) for affine fields F(x) = M x + c.

    x' = x + h/2 (F(x) + F(x'))   <=>   (I - h/2 M) x' = (I + h/2 M) x + h c
"""

from __future__ import annotations

import torch

from ..base import Method
from ..structure import Affine


class CrankNicolson(Method):
    """For fields with the ``Affine`` trait (``affine_parts``). Order 2, A-stable (no step-size restriction),
    preserves linear invariants. Cost: one dense LU factorisation per (field, h), then two triangular solves
    of size dim per step."""

    name = "CrankNicolson"
    order = 2
    requires = (Affine,)

    def __init__(self):
        # LU factors of I - h/2 M per (field, h, dtype, device): an Affine field's M and c are
        # constant by contract, so a fixed-step solve costs O(dim^2) per step after the first
        self._factors: dict = {}

    def _factored(self, field, h: float, dtype, device):
        key = (id(field), h, dtype, str(device))
        entry = self._factors.get(key)
        if entry is None or entry[0] is not field:
            M, c = field.affine_parts(dtype=dtype, device=device)
            eye = torch.eye(M.shape[0], dtype=dtype, device=device)
            entry = self._factors[key] = (field, M, c, *torch.linalg.lu_factor(eye - 0.5 * h * M))
        return entry[1:]

    def step(self, field, x: torch.Tensor, h) -> torch.Tensor:
        learned = isinstance(h, torch.Tensor)  # a learned step size: no caching, differentiable solve
        M, c, *lu = (field.affine_parts(dtype=x.dtype, device=x.device) if learned
                     else self._factored(field, float(h), x.dtype, x.device))
        rhs = (x + 0.5 * h * (x @ M.T) + h * c).unsqueeze(-1)
        if not learned:
            return torch.linalg.lu_solve(*lu, rhs).squeeze(-1)
        # unchecked solve (no host synchronisation): I - h/2 M is invertible for M with its spectrum in
        # the closed left half plane (the fields this method is for) and h > 0
        eye = torch.eye(M.shape[0], dtype=x.dtype, device=x.device)
        return torch.linalg.solve_ex(eye - 0.5 * h * M, rhs)[0].squeeze(-1)

    def guarantees(self, field, h) -> frozenset:
        return frozenset(field.linear_invariants())
