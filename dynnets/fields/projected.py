"""Make any field conserve a chosen linear quantity c^T x by projecting it onto c's orthogonal complement."""

from __future__ import annotations

import torch

from ..base import Field
from ..errors import ConfigError, ConfigTypeError
from ..structure import LinearInvariant


class Projected(Field):
    """F_c(x) = F(x) - c (c^T F(x)) / |c|^2, so c^T F_c(x) = 0 and every Runge-Kutta method conserves c^T x
    (``c``: non-zero, finite, any scale). The wrapped field's traits are dropped, except
    ``LinearInvariant(c2)`` with c2 exactly orthogonal to c (wrapping twice conserves both)."""

    def __init__(self, field: Field, c):
        super().__init__()
        if not isinstance(field, Field):
            raise ConfigTypeError(f"Projected wraps a dynnets Field, got {type(field).__name__}")
        trait = LinearInvariant(c)  # validates c (non-empty, finite, non-zero)
        if len(trait.c) != field.dim:
            raise ConfigError(f"c has {len(trait.c)} entries but {type(field).__name__} has dim={field.dim}")
        # c / max |c_i|: c^T c of c = 1e200 or 1e-300 would overflow or underflow; exact for c = (1, 1, 0, 0)
        c_t = torch.as_tensor(c, dtype=torch.float64).detach().reshape(-1)
        c_t = c_t / c_t.abs().max()
        self.field = field
        self.dim = len(trait.c)
        self.register_constant("c", c_t, persistent=False)
        self.register_constant("c_unit", c_t / c_t.dot(c_t), persistent=False)
        kept = {
            t for t in field.traits
            if isinstance(t, LinearInvariant) and len(t.c) == self.dim
            and sum(a * b for a, b in zip(t.c, trait.c, strict=True)) == 0.0
        }
        self.traits = frozenset(kept | {trait})
        p = next(field.parameters(), None)
        if p is not None:
            self.to(p.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        out = self.field(x)
        return out - (out @ self.c).unsqueeze(-1) * self.c_unit

    def extra_repr(self) -> str:
        shown = self.c.tolist() if self.dim <= 6 else self.c[:3].tolist() + ["..."]
        return f"c={shown}"
