"""Fields with a quadratic first integral: F(x) = S(x) Q x with S(x) skew-symmetric and Q symmetric, so
x^T Q F(x) = (Q x)^T S(x) (Q x) = 0 and x^T Q x is conserved by the flow. ``SpherePreserving`` is Q = I:
F(x) = S(x) x, d/dt ||x||^2 = 2 x^T S(x) x = 0."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..structure import ConservesQuadratic, SkewProduct
from .low_rank import LowRankSpherePreserving
from .upper_triangle import UpperTriangleNet, skew_basis


class _SkewNet(UpperTriangleNet):
    """S(x) = M(x) - M(x)^T with the strictly upper triangle of M(x) given by V^T Sigma(W x + w), built by
    placing +-entries, so it is skew-symmetric exactly in floating point."""

    def __init__(self, dim: int, width: int, activation: str, init_scale: float, why_dim: str):
        super().__init__(dim, width, activation, init_scale, bias_scale=0.5, why_dim=why_dim)
        self.register_buffer("basis", skew_basis(dim), persistent=False)

    def skew_matrix(self, x: torch.Tensor) -> torch.Tensor:
        """S(x), shape (batch, dim, dim)."""
        self.check_input(x)
        return (self.upper(x) @ self.basis).reshape(*x.shape[:-1], self.dim, self.dim)

    def product_jacobian(self, x: torch.Tensor, v: torch.Tensor, dv: torch.Tensor) -> torch.Tensor:
        """D [S(x) v(x)] for v(x) with Jacobian dv (dim x dim, constant): S(x) dv + [E_k v]_k (d u / d x),
        u = V^T sigma(W x + w) the upper-triangle entries and E_k the skew basis matrices, so that
        d u / d x = V^T diag(sigma'(W x + w)) W. Needs the activation's jet (sigma'); None without one."""
        if self.activation.jet is None:
            return None
        _, slope, _ = self.activation.jet(F.linear(x, self.W, self.w))               # (batch, width)
        du = (self.V.t().unsqueeze(0) * slope.unsqueeze(1)) @ self.W                  # (batch, m, dim)
        basis = self.basis.reshape(-1, self.dim, self.dim)                            # (m, dim, dim)
        ev = torch.einsum("mij,bj->bim", basis, v)                                    # (batch, dim, m)
        return self.skew_matrix(x) @ dv + ev @ du


class SpherePreserving(_SkewNet):
    """F(x) = S(x) x, S(x) = M(x) - M(x)^T, with the strictly upper triangle of M(x) given by
    V^T Sigma(W x + w) (W: (width, dim), V: (width, dim (dim - 1) / 2)). S(x) is built by placing
    +-entries, so it is skew-symmetric exactly in floating point. Needs dim >= 2.

    ``skew(x)`` returns S(x), shape (batch, dim, dim): the interface ``methods.Cayley`` uses. Traits
    ``SkewProduct`` and ``ConservesQuadratic(I)`` (every symplectic Runge-Kutta method keeps ||x||).

    ``rank=k`` builds a ``LowRankSpherePreserving(dim, width, activation, rank=k, init_scale=...)`` instead:
    S(x) = U(x) V(x)^T - V(x) U(x)^T with U, V of k columns, O(dim k) per sample, and a Cayley step that
    solves a 2k x 2k system per sample instead of a dim x dim one.
    """

    low_rank = LowRankSpherePreserving

    def __init__(self, dim: int, width: int, activation: str = "tanh", *, init_scale: float = 0.5,
                 rank: int | None = None):
        super().__init__(dim, width, activation, init_scale, why_dim="the only skew 1x1 matrix is 0")
        self.traits = frozenset({SkewProduct(), ConservesQuadratic(torch.eye(dim, dtype=torch.float64))})

    def skew(self, x: torch.Tensor) -> torch.Tensor:
        return self.skew_matrix(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.skew(x) @ x.unsqueeze(-1)).squeeze(-1)

    def jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """S(x) + [E_k x]_k du/dx in closed form (``product_jacobian``); autodiff for activations without
        a jet."""
        eye = torch.eye(self.dim, dtype=x.dtype, device=x.device)
        closed = self.product_jacobian(x, x, eye)
        return super().jacobian(x) if closed is None else closed


class QuadraticPreserving(_SkewNet):
    """F(x) = S(x) Q x for a given symmetric Q (dim x dim) and the learned skew S(x) of ``SpherePreserving``:
    x^T Q x is a first integral (trait ``ConservesQuadratic(Q)``), e.g. the kinetic energy of a rigid body
    with Q = diag(1 / I_k). Q must be exactly symmetric (use (Q + Q^T) / 2); it is kept in float64 and
    cast to the input's dtype, so the conserved form is the declared one in every dtype the module runs in.
    """

    def __init__(self, dim: int, width: int, Q, activation: str = "tanh", *, init_scale: float = 0.5):
        super().__init__(dim, width, activation, init_scale, why_dim="the only skew 1x1 matrix is 0")
        Q = torch.as_tensor(Q, dtype=torch.float64).detach().clone()
        if Q.shape != (self.dim, self.dim):
            raise ConfigError(f"Q must be a {self.dim}x{self.dim} matrix, got shape {tuple(Q.shape)}")
        if not bool(torch.isfinite(Q).all()) or not torch.equal(Q, Q.T):
            raise ConfigError("Q must be finite and exactly symmetric (use (Q + Q.T) / 2), got "
                              f"max |Q - Q^T| = {float((Q - Q.T).abs().max()):.3g}")
        self.Q = Q
        self.traits = frozenset({ConservesQuadratic(Q)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qx = x @ self.Q.to(dtype=x.dtype, device=x.device)
        return (self.skew_matrix(x) @ qx.unsqueeze(-1)).squeeze(-1)

    def jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """S(x) Q + [E_k Q x]_k du/dx in closed form; autodiff for activations without a jet."""
        Q = self.Q.to(dtype=x.dtype, device=x.device)
        closed = self.product_jacobian(x, x @ Q, Q)
        return super().jacobian(x) if closed is None else closed
