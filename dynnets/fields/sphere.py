"""Fields with a quadratic first integral: F(x) = S(x) Q x with S(x) skew-symmetric (``fields.skew``) and Q
symmetric, so x^T Q F(x) = (Q x)^T S(x) (Q x) = 0 and x^T Q x is conserved by the flow. ``SpherePreserving``
is Q = I: F(x) = S(x) x, d/dt ||x||^2 = 2 x^T S(x) x = 0."""

from __future__ import annotations

import torch

from ..checks import real_array
from ..errors import ConfigError
from ..structure import QuadraticInvariant, SkewProduct
from .skew import SkewField

_WHY_DIM = "the only skew 1x1 matrix is 0"


class SpherePreserving(SkewField):
    """F(x) = S(x) x, S(x) exactly skew (``fields.skew``: ``rank=None`` full rank, ``rank=k`` S(x) = U V^T -
    V U^T, ``skew_factors(x)`` = [U V]^T for the Woodbury Cayley step). Needs dim >= 2."""

    def __init__(self, dim: int, width: int, activation: str = "tanh", *, init_scale: float = 0.5,
                 rank: int | None = None):
        super().__init__(dim, width, activation, rank, init_scale, 0.5, _WHY_DIM)
        self.traits = frozenset({SkewProduct(), QuadraticInvariant.norm()})

    def skew(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.net.matrix(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.net.apply(x, x)

    def jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """In closed form at full rank (``UpperTriangleSkew.product_jacobian``); autodiff otherwise."""
        self.check_input(x)
        closed = self.net.product_jacobian(x, x, torch.eye(self.dim, dtype=x.dtype, device=x.device))
        return super().jacobian(x) if closed is None else closed


class QuadraticPreserving(SkewField):
    """F(x) = S(x) Q x for a given exactly symmetric Q (dim x dim, kept in float64) and the full-rank S(x) of
    ``SpherePreserving``: x^T Q x is a first integral."""

    def __init__(self, dim: int, width: int, Q, activation: str = "tanh", *, init_scale: float = 0.5):
        super().__init__(dim, width, activation, None, init_scale, 0.5, _WHY_DIM)
        Q = real_array("Q", Q).clone()
        if Q.shape != (self.dim, self.dim):
            raise ConfigError(f"Q must be a {self.dim}x{self.dim} matrix, got shape {tuple(Q.shape)}")
        if not torch.equal(Q, Q.T):  # finite: real_array
            raise ConfigError("Q must be finite and exactly symmetric (use (Q + Q.T) / 2), got "
                              f"max |Q - Q^T| = {float((Q - Q.T).abs().max()):.3g}")
        self.register_constant("Q", Q, dtype=torch.float64)
        self.traits = frozenset({QuadraticInvariant(Q)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.net.apply(x, x @ self.constant("Q", x))

    def jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """In closed form (``UpperTriangleSkew.product_jacobian``); autodiff for activations without a jet."""
        self.check_input(x)
        Q = self.constant("Q", x)
        closed = self.net.product_jacobian(x, x @ Q, Q)
        return super().jacobian(x) if closed is None else closed
